#include "common/service/replica_ring.h"

#include <algorithm>
#include <map>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"

namespace ctxmem::service {
namespace {

std::vector<std::string> Addresses(int n) {
  std::vector<std::string> out;
  for (int i = 0; i < n; ++i) out.push_back(absl::StrCat("compressor-", i, ":50051"));
  return out;
}

std::string Key(int i) { return absl::StrCat("memory-", i * 7919); }

TEST(ReplicaRingTest, OrderListsEveryReplicaOnceAndIsStable) {
  auto ring = ReplicaRing::Create(Addresses(4));
  ASSERT_TRUE(ring.ok());
  for (int i = 0; i < 50; ++i) {
    std::vector<int> order = ring->Order(Key(i));
    ASSERT_EQ(order.size(), 4u);
    std::vector<int> sorted = order;
    std::sort(sorted.begin(), sorted.end());
    EXPECT_EQ(sorted, (std::vector<int>{0, 1, 2, 3}));
    EXPECT_EQ(ring->Order(Key(i)), order);  // deterministic
  }
  auto again = ReplicaRing::Create(Addresses(4));  // same placement in another instance
  EXPECT_EQ(again->Order(Key(3)), ring->Order(Key(3)));
}

TEST(ReplicaRingTest, SpreadsKeysOverReplicas) {
  auto ring = ReplicaRing::Create(Addresses(3));
  ASSERT_TRUE(ring.ok());
  std::map<int, int> owners;
  for (int i = 0; i < 3000; ++i) ++owners[ring->Order(Key(i))[0]];
  ASSERT_EQ(owners.size(), 3u);
  for (const auto& [replica, n] : owners) {
    EXPECT_GT(n, 600) << "replica " << replica;
    EXPECT_LT(n, 1400) << "replica " << replica;
  }
}

TEST(ReplicaRingTest, RemovingAReplicaOnlyMovesItsKeys) {
  auto four = ReplicaRing::Create(Addresses(4));
  std::vector<std::string> three_addresses = Addresses(4);
  three_addresses.erase(three_addresses.begin() + 2);
  auto three = ReplicaRing::Create(three_addresses);
  ASSERT_TRUE(four.ok() && three.ok());
  for (int i = 0; i < 1000; ++i) {
    const std::vector<int> order4 = four->Order(Key(i));
    const std::string owner4 = four->addresses()[order4[0]];
    const std::string owner3 = three->addresses()[three->Order(Key(i))[0]];
    if (order4[0] != 2) {
      EXPECT_EQ(owner3, owner4) << Key(i);
    } else {
      // The removed replica's keys go to its fail-over successor.
      EXPECT_EQ(owner3, four->addresses()[order4[1]]) << Key(i);
    }
  }
}

TEST(ReplicaRingTest, RejectsBadAddressLists) {
  EXPECT_EQ(ReplicaRing::Create({}).status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(ReplicaRing::Create({"a:1", ""}).status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(ReplicaRing::Create({"a:1", "a:1"}).status().code(),
            absl::StatusCode::kInvalidArgument);
  auto one = ReplicaRing::Create({"only:1"});
  ASSERT_TRUE(one.ok());
  EXPECT_EQ(one->Order("x"), std::vector<int>{0});
}

}  // namespace
}  // namespace ctxmem::service
