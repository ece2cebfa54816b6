// The gateway's HTTP server: civetweb, with every request handed to Gateway::Impl::dispatch
// (http.cpp); the rest by concern in gateway_impl.h.
#include <mutex>
#include <stdexcept>

#include "gateway_impl.h"

namespace agentline::gateway {

namespace {
int handle(mg_connection* conn, void* cbdata) { return static_cast<Gateway::Impl*>(cbdata)->dispatch(conn); }
}  // namespace

Gateway::Gateway(GatewayConfig config, ProgressView& view, kafka::Producer& producer,
                 const events::MessageValidator& validator, std::shared_ptr<prometheus::Registry> registry,
                 std::shared_ptr<observability::HealthState> health)
    : impl_(std::make_unique<Impl>(std::move(config), view, producer, validator, std::move(registry),
                                   std::move(health))) {}

Gateway::~Gateway() { stop(); }

void Gateway::start() {
  static std::once_flag init;
  std::call_once(init, [] { mg_init_library(0); });
  const std::string ports = impl_->config.host + ":" + std::to_string(impl_->config.port);
  const std::string threads = std::to_string(impl_->config.max_streams + 16);
  const char* options[] = {"listening_ports",    ports.c_str(),       "num_threads",
                           threads.c_str(),      "enable_keep_alive", "yes",
                           "request_timeout_ms", "3600000",           nullptr};
  mg_callbacks callbacks{};
  impl_->ctx = mg_start(&callbacks, nullptr, options);
  if (impl_->ctx == nullptr) throw std::runtime_error("cannot listen on " + ports);
  mg_set_request_handler(impl_->ctx, "/", handle, impl_.get());
  mg_server_port bound[4];
  const int n = mg_get_server_ports(impl_->ctx, 4, bound);
  impl_->bound_port = n > 0 ? bound[0].port : impl_->config.port;
}

void Gateway::stop() {
  if (impl_->ctx == nullptr) return;
  impl_->stopping.store(true);
  impl_->view.stop();
  mg_stop(impl_->ctx);
  impl_->ctx = nullptr;
}

int Gateway::port() const { return impl_->bound_port; }

}  // namespace agentline::gateway
