#include "common/service/admission_gate.h"

#include <gtest/gtest.h>

#include <utility>
#include <vector>

namespace ctxmem::service {
namespace {

TEST(AdmissionGateTest, AdmitsWorkersPlusQueueDepthThenRefusesAtOnce) {
  std::vector<AdmissionCounts> seen;
  AdmissionGate gate("compress", 1, 2, [&](AdmissionCounts c) { seen.push_back(c); });
  std::vector<AdmissionTicket> tickets;
  for (int i = 0; i < 3; ++i) tickets.push_back(std::move(gate.TryAdmit()).value());
  auto refused = gate.TryAdmit();
  ASSERT_EQ(refused.status().code(), absl::StatusCode::kResourceExhausted);
  EXPECT_NE(refused.status().message().find("compress queue is full"), std::string::npos);
  tickets[0].MarkRunning();
  EXPECT_EQ(gate.counts().running, 1);
  EXPECT_EQ(gate.counts().waiting, 2);
  ASSERT_FALSE(seen.empty());
  EXPECT_EQ(seen.back().running, 1);
  tickets[0].Release();
  EXPECT_EQ(gate.counts().running, 0);
  EXPECT_TRUE(gate.TryAdmit().ok());  // the freed slot is usable (and released at once)
}

TEST(AdmissionGateTest, TicketsReleaseOnceWhenMovedOrDestroyed) {
  AdmissionGate gate("q", 1, 0);
  {
    AdmissionTicket a = std::move(gate.TryAdmit()).value();
    AdmissionTicket b = std::move(a);
    EXPECT_FALSE(a.held());
    EXPECT_FALSE(gate.TryAdmit().ok());
    b.MarkRunning();
    b.MarkRunning();
    EXPECT_EQ(gate.counts().running, 1);
    AdmissionTicket c;
    c = std::move(b);
    EXPECT_EQ(gate.counts().running, 1);
  }
  EXPECT_EQ(gate.counts().running, 0);
  EXPECT_EQ(gate.counts().waiting, 0);
}

}  // namespace
}  // namespace ctxmem::service
