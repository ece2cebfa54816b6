#include "agentline/kafka/producer.h"

#include <spdlog/spdlog.h>

#include <array>
#include <atomic>
#include <future>
#include <thread>

#include "kafka/handles.h"

namespace agentline::kafka {

using namespace detail;

struct Producer::Impl {
  KafkaPtr rk;
  std::atomic<bool> stop{false};
  std::thread poller;

  static void on_delivery(rd_kafka_t*, const rd_kafka_message_t* msg, void*) {
    auto* callback = static_cast<DeliveryCallback*>(msg->_private);
    if (callback == nullptr) return;
    DeliveryReport report;
    report.ok = msg->err == RD_KAFKA_RESP_ERR_NO_ERROR;
    if (!report.ok) report.error = rd_kafka_err2str(msg->err);
    report.partition = msg->partition;
    report.offset = msg->offset;
    try {
      (*callback)(report);
    } catch (const std::exception& e) {
      // Never let an exception cross librdkafka's C frames.
      spdlog::error("delivery callback threw: {}", e.what());
    }
    delete callback;
  }
};

Producer::Producer(const KafkaSettings& settings, std::string client_id) : impl_(std::make_unique<Impl>()) {
  auto conf = make_conf(settings,
                        {{"client.id", client_id},
                         {"linger.ms", "5"},
                         {"delivery.timeout.ms", "300000"},
                         {"message.max.bytes", "4194304"}},
                        {{"enable.idempotence", "true"}, {"acks", "all"}});
  rd_kafka_conf_set_dr_msg_cb(conf.get(), &Impl::on_delivery);
  impl_->rk = make_client(RD_KAFKA_PRODUCER, std::move(conf));
  impl_->poller = std::thread([impl = impl_.get()] {
    while (!impl->stop.load(std::memory_order_acquire)) rd_kafka_poll(impl->rk.get(), 100);
  });
}

Producer::~Producer() {
  if (!flush(std::chrono::seconds(30))) {
    spdlog::error("producer: records still unacknowledged after 30 s at shutdown; purging them");
    rd_kafka_purge(impl_->rk.get(), RD_KAFKA_PURGE_F_QUEUE | RD_KAFKA_PURGE_F_INFLIGHT);
  }
  impl_->stop.store(true, std::memory_order_release);
  impl_->poller.join();
  rd_kafka_poll(impl_->rk.get(), 0);  // serve purge reports, so no callback is lost
}

void Producer::send(const OutgoingRecord& record, DeliveryCallback on_delivery) {
  auto* callback = new DeliveryCallback(std::move(on_delivery));
  for (;;) {
    rd_kafka_headers_t* hdrs = rd_kafka_headers_new(record.headers.size());
    for (const auto& h : record.headers) {
      rd_kafka_header_add(hdrs, h.key.data(), static_cast<ssize_t>(h.key.size()), h.value.data(),
                          static_cast<ssize_t>(h.value.size()));
    }
    // rd_kafka_produceva, not rd_kafka_producev: its RD_KAFKA_V_* macros are GNU statement
    // expressions, which clang rejects with -Wpedantic -Werror.
    std::array<rd_kafka_vu_t, 7> vus{};
    vus[0].vtype = RD_KAFKA_VTYPE_TOPIC;
    vus[0].u.cstr = record.topic.c_str();
    vus[1].vtype = RD_KAFKA_VTYPE_PARTITION;
    vus[1].u.i32 = record.partition.value_or(RD_KAFKA_PARTITION_UA);
    vus[2].vtype = RD_KAFKA_VTYPE_MSGFLAGS;
    vus[2].u.i = RD_KAFKA_MSG_F_COPY;
    vus[3].vtype = RD_KAFKA_VTYPE_KEY;
    vus[3].u.mem.ptr = record.key.empty() ? nullptr : const_cast<char*>(record.key.data());
    vus[3].u.mem.size = record.key.size();
    vus[4].vtype = RD_KAFKA_VTYPE_VALUE;
    vus[4].u.mem.ptr = record.tombstone ? nullptr : const_cast<char*>(record.value.data());
    vus[4].u.mem.size = record.tombstone ? 0 : record.value.size();
    vus[5].vtype = RD_KAFKA_VTYPE_HEADERS;
    vus[5].u.headers = hdrs;
    vus[6].vtype = RD_KAFKA_VTYPE_OPAQUE;
    vus[6].u.ptr = callback;
    rd_kafka_error_t* error = rd_kafka_produceva(impl_->rk.get(), vus.data(), vus.size());
    const rd_kafka_resp_err_t err = error ? rd_kafka_error_code(error) : RD_KAFKA_RESP_ERR_NO_ERROR;
    if (error) rd_kafka_error_destroy(error);
    if (err == RD_KAFKA_RESP_ERR_NO_ERROR) return;  // headers now owned by the message
    rd_kafka_headers_destroy(hdrs);
    if (err == RD_KAFKA_RESP_ERR__QUEUE_FULL) {
      std::this_thread::sleep_for(std::chrono::milliseconds(10));  // the poller drains reports
      continue;
    }
    DeliveryReport report;
    report.error = rd_kafka_err2str(err);
    try {
      (*callback)(report);
    } catch (const std::exception& e) {
      spdlog::error("delivery callback threw: {}", e.what());
    }
    delete callback;
    return;
  }
}

DeliveryReport Producer::send_and_wait(const OutgoingRecord& record) {
  auto promise = std::make_shared<std::promise<DeliveryReport>>();
  auto future = promise->get_future();
  send(record, [promise](const DeliveryReport& r) { promise->set_value(r); });
  return future.get();
}

bool Producer::flush(std::chrono::milliseconds timeout) {
  return rd_kafka_flush(impl_->rk.get(), static_cast<int>(timeout.count())) == RD_KAFKA_RESP_ERR_NO_ERROR;
}

}  // namespace agentline::kafka
