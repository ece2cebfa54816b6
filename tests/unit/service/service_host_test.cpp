// ServiceHost's sizing of pools: an option wins, else the service's rule over the container's
// limits, else 16; each size is exported with where it came from.
#include "agentline/service/service_host.h"

#include <gtest/gtest.h>
#include <prometheus/registry.h>
#include <prometheus/text_serializer.h>

namespace agentline::service {
namespace {

std::string scrape(prometheus::Registry& registry) {
  return prometheus::TextSerializer().Serialize(registry.Collect());
}

TEST(ServiceHost, APoolIsSizedByItsOptionOrTheContainerAndSaysWhich) {
  ServiceHost host("sizing-test", "test", {});
  double cpus_seen = 0;
  auto per_cpu = [&](const config::ContainerResources& r) {
    cpus_seen = r.cpus;
    return static_cast<int>(3 * r.cpus);
  };
  EXPECT_EQ(host.size_pool("uploads", 5, per_cpu), 5);
  EXPECT_EQ(cpus_seen, 0) << "a configured size asks nothing of the container";
  const int sized = host.size_pool("checks", 0, per_cpu);
  EXPECT_GT(cpus_seen, 0);
  EXPECT_EQ(sized, static_cast<int>(3 * cpus_seen));
  EXPECT_EQ(host.size_pool("handlers", 0, {}), 16) << "no rule: the default";
  EXPECT_EQ(host.size_pool("tiny", 0, [](const config::ContainerResources&) { return 0; }), 1) << "never zero";
  const auto text = scrape(*host.registry());
  EXPECT_NE(text.find(R"(agentline_pool_size{pool="uploads",source="option"} 5)"), std::string::npos) << text;
  EXPECT_NE(text.find(R"(agentline_pool_size{pool="checks",source="container"} )" + std::to_string(sized)),
            std::string::npos)
      << text;
  EXPECT_NE(text.find(R"(agentline_pool_size{pool="handlers",source="default"} 16)"), std::string::npos) << text;
}

}  // namespace
}  // namespace agentline::service
