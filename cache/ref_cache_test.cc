#include "cache/ref_cache.h"

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <memory>
#include <optional>
#include <random>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "absl/time/time.h"
#include "gtest/gtest.h"

namespace cache {
namespace {

using IntCache = RefCache<int, int>;

// A loader that makes `value` and counts its calls.
auto Make(int value, std::atomic<int>* calls = nullptr) {
  return [value, calls]() -> absl::StatusOr<std::unique_ptr<int>> {
    if (calls != nullptr) calls->fetch_add(1);
    return std::make_unique<int>(value);
  };
}

auto Fail(absl::Status status, std::atomic<int>* calls = nullptr) {
  return [status, calls]() -> absl::StatusOr<std::unique_ptr<int>> {
    if (calls != nullptr) calls->fetch_add(1);
    return status;
  };
}

// Loads `key` (value key * 10) and releases it at once.
void Touch(IntCache& cache, int key) {
  ASSERT_TRUE(cache.GetOrLoad(key, Make(key * 10)).ok());
}

TEST(RefCacheTest, LoadsOnce) {
  IntCache cache(10);
  std::atomic<int> calls{0};
  absl::StatusOr<IntCache::Handle> a = cache.GetOrLoad(1, Make(42, &calls));
  ASSERT_TRUE(a.ok());
  EXPECT_EQ(**a, 42);
  EXPECT_EQ(a->key(), 1);
  absl::StatusOr<IntCache::Handle> b = cache.GetOrLoad(1, Make(7, &calls));
  ASSERT_TRUE(b.ok());
  EXPECT_EQ(a->get(), b->get());
  EXPECT_EQ(calls.load(), 1);
  a->Reset();
  b->Reset();
  absl::StatusOr<IntCache::Handle> c = cache.GetOrLoad(1, Make(7, &calls));
  ASSERT_TRUE(c.ok());
  EXPECT_EQ(**c, 42);
  EXPECT_EQ(calls.load(), 1);
  EXPECT_EQ(cache.stats().misses, 1u);
  EXPECT_EQ(cache.stats().hits, 2u);
}

TEST(RefCacheTest, StringKeysAndValues) {
  RefCache<std::string, std::string> cache(2);
  for (std::string name : {"alpha", "beta", "gamma"}) {
    auto handle = cache.GetOrLoad(
        name, [&]() -> absl::StatusOr<std::unique_ptr<std::string>> {
          return std::make_unique<std::string>(name + "!");
        });
    ASSERT_TRUE(handle.ok());
    EXPECT_EQ(**handle, name + "!");
    EXPECT_EQ((*handle)->size(), name.size() + 1);
  }
  EXPECT_EQ(cache.size(), 2u);
  EXPECT_FALSE(cache.Contains("alpha"));
  EXPECT_TRUE(cache.Contains("gamma"));
}

TEST(RefCacheTest, GetIfCachedNeverLoads) {
  IntCache cache(1);
  EXPECT_FALSE(cache.GetIfCached(1).has_value());
  EXPECT_EQ(cache.size(), 0u);
  Touch(cache, 1);
  std::optional<IntCache::Handle> h = cache.GetIfCached(1);
  ASSERT_TRUE(h.has_value());
  EXPECT_EQ(**h, 10);
  h.reset();
  Touch(cache, 2);  // evicts 1
  EXPECT_FALSE(cache.GetIfCached(1).has_value());
  EXPECT_EQ(cache.stats().misses, 2u);
}

TEST(RefCacheTest, HandleCopyAndMove) {
  IntCache cache(0);
  auto loaded = cache.GetOrLoad(1, Make(5));
  ASSERT_TRUE(loaded.ok());
  IntCache::Handle a = *std::move(loaded);
  IntCache::Handle b = a;  // copy: a second reference
  IntCache::Handle c = std::move(a);
  EXPECT_FALSE(a);  // NOLINT(bugprone-use-after-move): documented empty
  EXPECT_TRUE(b);
  EXPECT_EQ(b.get(), c.get());
  c.Reset();
  EXPECT_EQ(cache.size(), 1u);  // b still holds it despite limit 0
  EXPECT_FALSE(cache.Erase(1));
  b = IntCache::Handle();
  EXPECT_EQ(cache.size(), 0u);
}

TEST(RefCacheTest, EvictsLeastRecentlyUsed) {
  std::vector<int> evicted;
  IntCache cache(3, nullptr,
                 [&](const int& key, int&) { evicted.push_back(key); });
  Touch(cache, 1);
  Touch(cache, 2);
  Touch(cache, 3);
  EXPECT_TRUE(cache.GetIfCached(1).has_value());  // 1 is now the newest
  Touch(cache, 4);
  Touch(cache, 5);
  EXPECT_EQ(evicted, (std::vector<int>{2, 3}));
  EXPECT_TRUE(cache.Contains(1));
  EXPECT_TRUE(cache.Contains(4));
  EXPECT_TRUE(cache.Contains(5));
  EXPECT_EQ(cache.stats().evictions, 2u);
}

TEST(RefCacheTest, LimitHoldsWhileWalkingAMillionKeys) {
  constexpr size_t kLimit = 1000;
  constexpr int kKeys = 1000000;
  IntCache cache(kLimit);
  size_t max_held = 0;
  size_t max_released = 0;
  for (int key = 0; key < kKeys; ++key) {
    auto handle = cache.GetOrLoad(key, Make(key));
    ASSERT_TRUE(handle.ok());
    max_held = std::max(max_held, cache.size());
    handle->Reset();
    max_released = std::max(max_released, cache.size());
  }
  EXPECT_LE(max_held, kLimit + 1);  // the one in use
  EXPECT_LE(max_released, kLimit);
  EXPECT_EQ(cache.size(), kLimit);
  EXPECT_EQ(cache.stats().evictions, kKeys - kLimit);
  EXPECT_EQ(cache.stats().misses, static_cast<uint64_t>(kKeys));
}

TEST(RefCacheTest, PinnedEntriesStayWithoutHandles) {
  IntCache cache(2);
  {
    auto handle = cache.GetOrLoad(1, Make(10));
    ASSERT_TRUE(handle.ok());
    cache.Pin(*handle, PinKind::kLookup);
  }
  for (int key = 100; key < 200; ++key) Touch(cache, key);
  EXPECT_TRUE(cache.Contains(1));
  EXPECT_EQ(cache.size(), 2u);
  EXPECT_EQ(cache.PinCount(1, PinKind::kLookup), 1u);
  EXPECT_EQ(cache.PinCount(1, PinKind::kOpen), 0u);
  EXPECT_FALSE(cache.Erase(1));
  cache.Clear();
  EXPECT_TRUE(cache.Contains(1));
  EXPECT_EQ(cache.size(), 1u);
}

TEST(RefCacheTest, UnpinByKeyAfterHandlesAreGone) {
  IntCache cache(1);
  {
    auto handle = cache.GetOrLoad(1, Make(10));
    ASSERT_TRUE(handle.ok());
    cache.Pin(*handle, PinKind::kLookup, 3);
    cache.Pin(*handle, PinKind::kOpen);
  }
  Touch(cache, 2);  // over the limit: 2 goes, 1 is pinned
  EXPECT_TRUE(cache.Contains(1));
  EXPECT_FALSE(cache.Contains(2));
  EXPECT_EQ(cache.Unpin(1, PinKind::kLookup, 2), 1u);
  EXPECT_EQ(cache.Unpin(1, PinKind::kLookup, 1), 0u);
  EXPECT_TRUE(cache.Contains(1));  // still open
  EXPECT_EQ(cache.Unpin(1, PinKind::kOpen, 1), 0u);
  EXPECT_TRUE(cache.Contains(1));  // evictable, but within the limit
  Touch(cache, 3);
  EXPECT_FALSE(cache.Contains(1));
  EXPECT_TRUE(cache.Contains(3));
}

TEST(RefCacheTest, UnpinEvictsAtOnceWhenOverLimit) {
  IntCache cache(0);
  {
    auto handle = cache.GetOrLoad(1, Make(10));
    ASSERT_TRUE(handle.ok());
    cache.Pin(*handle, PinKind::kOpen);
  }
  EXPECT_EQ(cache.size(), 1u);
  EXPECT_EQ(cache.Unpin(1, PinKind::kOpen, 1), 0u);
  EXPECT_EQ(cache.size(), 0u);
}

TEST(RefCacheTest, UnpinClampsAtZero) {
  IntCache cache(4);
  auto handle = cache.GetOrLoad(1, Make(10));
  ASSERT_TRUE(handle.ok());
  cache.Pin(*handle, PinKind::kLookup, 2);
  EXPECT_EQ(cache.Unpin(1, PinKind::kLookup, 5), 0u);
  EXPECT_EQ(cache.PinCount(1, PinKind::kLookup), 0u);
  EXPECT_EQ(cache.Unpin(1, PinKind::kLookup, 1), 0u);
  EXPECT_EQ(cache.Unpin(1, PinKind::kOpen, UINT64_MAX), 0u);
  EXPECT_EQ(cache.Unpin(99, PinKind::kLookup, 1), 0u);  // not in core
  EXPECT_EQ(cache.PinCount(99, PinKind::kLookup), 0u);
  cache.Pin(*handle, PinKind::kLookup, UINT64_MAX);
  cache.Pin(*handle, PinKind::kLookup, 5);  // saturates
  EXPECT_EQ(cache.PinCount(1, PinKind::kLookup), UINT64_MAX);
}

TEST(RefCacheTest, GrowsUnderPressureAndShrinksBack) {
  IntCache cache(4);
  std::vector<IntCache::Handle> held;
  for (int key = 0; key < 10; ++key) {
    auto handle = cache.GetOrLoad(key, Make(key));
    ASSERT_TRUE(handle.ok());
    held.push_back(*std::move(handle));
  }
  EXPECT_EQ(cache.size(), 10u);
  for (int key = 0; key < 10; ++key) EXPECT_EQ(*held[key], key);
  held.resize(5);  // releases 5..9
  EXPECT_EQ(cache.size(), 5u);
  held.clear();
  EXPECT_EQ(cache.size(), 4u);
  cache.set_limit(2);
  EXPECT_EQ(cache.size(), 2u);
  EXPECT_EQ(cache.limit(), 2u);
  cache.Clear();
  EXPECT_EQ(cache.size(), 0u);
}

TEST(RefCacheTest, DirtyEntryIsWrittenBeforeEviction) {
  std::vector<std::pair<int, int>> written;
  std::vector<int> evicted;
  IntCache cache(
      2,
      [&](const int& key, int& value) {
        written.emplace_back(key, value);
        return absl::OkStatus();
      },
      [&](const int& key, int&) {
        // Written before it is dropped.
        EXPECT_EQ(std::count_if(written.begin(), written.end(),
                                [&](auto& w) { return w.first == key; }),
                  key == 1 ? 1 : 0);
        evicted.push_back(key);
      });
  {
    auto handle = cache.GetOrLoad(1, Make(10));
    ASSERT_TRUE(handle.ok());
    **handle = 11;
    cache.MarkDirty(*handle);
  }
  EXPECT_TRUE(cache.IsDirty(1));
  EXPECT_TRUE(written.empty());
  Touch(cache, 2);
  Touch(cache, 3);
  EXPECT_EQ(written, (std::vector<std::pair<int, int>>{{1, 11}}));
  EXPECT_EQ(evicted, (std::vector<int>{1}));
  EXPECT_FALSE(cache.Contains(1));
  EXPECT_EQ(cache.stats().writebacks, 1u);
}

TEST(RefCacheTest, DirtyEntryStaysWithoutWriteback) {
  IntCache cache(2);
  {
    auto handle = cache.GetOrLoad(1, Make(10));
    ASSERT_TRUE(handle.ok());
    cache.MarkDirty(*handle);
  }
  for (int key = 2; key < 20; ++key) Touch(cache, key);
  EXPECT_TRUE(cache.Contains(1));
  EXPECT_EQ(cache.size(), 2u);
  EXPECT_FALSE(cache.Erase(1));
  cache.Clear();
  EXPECT_EQ(cache.size(), 1u);
  cache.set_limit(0);
  EXPECT_EQ(cache.size(), 1u);
  int writes = 0;
  EXPECT_TRUE(cache
                  .FlushDirty([&](const int& key, int& value) {
                    EXPECT_EQ(key, 1);
                    EXPECT_EQ(value, 10);
                    ++writes;
                    return absl::OkStatus();
                  })
                  .ok());
  EXPECT_EQ(writes, 1);
  EXPECT_EQ(cache.size(), 0u);  // clean now, and over the limit
}

TEST(RefCacheTest, MarkCleanDropsDirtyState) {
  IntCache cache(0);
  auto handle = cache.GetOrLoad(1, Make(10));
  ASSERT_TRUE(handle.ok());
  cache.MarkDirty(*handle);
  cache.MarkClean(*handle);
  EXPECT_FALSE(cache.IsDirty(1));
  handle->Reset();
  EXPECT_EQ(cache.size(), 0u);
}

TEST(RefCacheTest, FlushDirtyWritesEachDirtyEntryOnce) {
  IntCache cache(100);
  std::vector<IntCache::Handle> held;
  for (int key = 0; key < 10; ++key) {
    auto handle = cache.GetOrLoad(key, Make(key));
    ASSERT_TRUE(handle.ok());
    if (key % 2 == 0) cache.MarkDirty(*handle);
    if (key < 5) held.push_back(*std::move(handle));
  }
  std::vector<int> written;
  auto write = [&](const int& key, int& value) {
    EXPECT_EQ(key, value);
    written.push_back(key);
    return key == 4 ? absl::DataLossError("disk") : absl::OkStatus();
  };
  absl::Status status = cache.FlushDirty(write);
  EXPECT_EQ(status.code(), absl::StatusCode::kDataLoss);
  std::sort(written.begin(), written.end());
  EXPECT_EQ(written, (std::vector<int>{0, 2, 4, 6, 8}));
  for (int key = 0; key < 10; ++key) EXPECT_EQ(cache.IsDirty(key), key == 4);
  written.clear();
  status = cache.FlushDirty(write);
  EXPECT_EQ(written, (std::vector<int>{4}));
  written.clear();
  EXPECT_TRUE(cache
                  .FlushDirty([&](const int& key, int&) {
                    written.push_back(key);
                    return absl::OkStatus();
                  })
                  .ok());
  EXPECT_EQ(written, (std::vector<int>{4}));
  EXPECT_FALSE(cache.IsDirty(4));
  written.clear();
  EXPECT_TRUE(cache.FlushDirty(write).ok());
  EXPECT_TRUE(written.empty());
}

TEST(RefCacheTest, FailedEvictionWritebackKeepsEntryUntilFlushed) {
  bool fail = true;
  IntCache cache(1, [&](const int&, int&) {
    return fail ? absl::UnavailableError("no") : absl::OkStatus();
  });
  {
    auto handle = cache.GetOrLoad(1, Make(10));
    ASSERT_TRUE(handle.ok());
    cache.MarkDirty(*handle);
  }
  Touch(cache, 2);
  EXPECT_TRUE(cache.Contains(1));
  EXPECT_TRUE(cache.IsDirty(1));
  EXPECT_EQ(cache.stats().writeback_failures, 1u);
  Touch(cache, 3);  // no retry at eviction
  EXPECT_EQ(cache.stats().writeback_failures, 1u);
  fail = false;
  EXPECT_TRUE(
      cache.FlushDirty([](const int&, int&) { return absl::OkStatus(); }).ok());
  EXPECT_FALSE(cache.IsDirty(1));
  EXPECT_EQ(cache.size(), 1u);
  Touch(cache, 4);  // 1 is clean and evictable again
  EXPECT_FALSE(cache.Contains(1));
  EXPECT_EQ(cache.size(), 1u);
}

TEST(RefCacheTest, WritebackMayUseTheCache) {
  IntCache* self = nullptr;
  int writes = 0;
  IntCache cache(1, [&](const int& key, int&) {
    ++writes;
    // Loading and releasing another key from inside a write-back must not
    // deadlock, and must not start a nested write-back.
    auto other = self->GetOrLoad(key + 1000, Make(0));
    EXPECT_TRUE(other.ok());
    return absl::OkStatus();
  });
  self = &cache;
  for (int key = 0; key < 20; ++key) {
    auto handle = cache.GetOrLoad(key, Make(key));
    ASSERT_TRUE(handle.ok());
    cache.MarkDirty(*handle);
  }
  EXPECT_EQ(writes, 19);
  EXPECT_LE(cache.size(), 2u);
}

TEST(RefCacheTest, FailedLoadIsNotCached) {
  IntCache cache(4);
  std::atomic<int> calls{0};
  auto failed = cache.GetOrLoad(1, Fail(absl::NotFoundError("gone"), &calls));
  EXPECT_EQ(failed.status().code(), absl::StatusCode::kNotFound);
  EXPECT_FALSE(cache.GetIfCached(1).has_value());
  EXPECT_EQ(cache.size(), 0u);
  auto loaded = cache.GetOrLoad(1, Make(10, &calls));
  ASSERT_TRUE(loaded.ok());
  EXPECT_EQ(**loaded, 10);
  EXPECT_EQ(calls.load(), 2);
  EXPECT_EQ(cache.stats().load_failures, 1u);

  auto null = cache.GetOrLoad(
      2, []() -> absl::StatusOr<std::unique_ptr<int>> { return nullptr; });
  EXPECT_EQ(null.status().code(), absl::StatusCode::kInternal);
  EXPECT_EQ(cache.size(), 1u);
}

TEST(RefCacheTest, ConcurrentGetOrLoadOfOneKeyLoadsOnce) {
  constexpr int kThreads = 8;
  IntCache cache(4);
  std::atomic<int> calls{0};
  std::atomic<int> ready{0};
  std::vector<int*> seen(kThreads);
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      ready.fetch_add(1);
      while (ready.load() < kThreads) std::this_thread::yield();
      auto handle =
          cache.GetOrLoad(7, [&]() -> absl::StatusOr<std::unique_ptr<int>> {
            calls.fetch_add(1);
            absl::SleepFor(absl::Milliseconds(50));
            return std::make_unique<int>(70);
          });
      ASSERT_TRUE(handle.ok());
      EXPECT_EQ(**handle, 70);
      seen[t] = handle->get();
    });
  }
  for (auto& thread : threads) thread.join();
  EXPECT_EQ(calls.load(), 1);
  for (int* p : seen) EXPECT_EQ(p, seen[0]);
  EXPECT_EQ(cache.size(), 1u);
}

TEST(RefCacheTest, WaitersShareAFailedLoadsError) {
  constexpr int kThreads = 8;
  IntCache cache(4);
  std::atomic<int> calls{0};
  std::atomic<int> ready{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&] {
      ready.fetch_add(1);
      while (ready.load() < kThreads) std::this_thread::yield();
      auto handle =
          cache.GetOrLoad(7, [&]() -> absl::StatusOr<std::unique_ptr<int>> {
            calls.fetch_add(1);
            absl::SleepFor(absl::Milliseconds(50));
            return absl::DataLossError("bad inode");
          });
      EXPECT_EQ(handle.status().code(), absl::StatusCode::kDataLoss);
    });
  }
  for (auto& thread : threads) thread.join();
  EXPECT_GE(calls.load(), 1);
  EXPECT_LT(calls.load(), kThreads);  // waiters did not each load
  EXPECT_EQ(cache.size(), 0u);
}

TEST(RefCacheTest, LoadsOfDifferentKeysRunInParallel) {
  IntCache cache(4);
  absl::Notification first_started, second_started;
  bool first_saw_second = false;
  std::thread first([&] {
    auto handle =
        cache.GetOrLoad(1, [&]() -> absl::StatusOr<std::unique_ptr<int>> {
          first_started.Notify();
          first_saw_second =
              second_started.WaitForNotificationWithTimeout(absl::Seconds(30));
          return std::make_unique<int>(1);
        });
    EXPECT_TRUE(handle.ok());
  });
  first_started.WaitForNotification();
  auto handle =
      cache.GetOrLoad(2, [&]() -> absl::StatusOr<std::unique_ptr<int>> {
        second_started.Notify();
        return std::make_unique<int>(2);
      });
  EXPECT_TRUE(handle.ok());
  first.join();
  EXPECT_TRUE(first_saw_second);
}

// A value with its own lock, as the cache requires of shared values.
struct Counter {
  explicit Counter(int k) : key(k) {}
  const int key;
  absl::Mutex mu;
  int64_t changes ABSL_GUARDED_BY(mu) = 0;
  int64_t written ABSL_GUARDED_BY(mu) = 0;
};

TEST(RefCacheTest, ConcurrentRandomWorkload) {
  constexpr int kThreads = 8;
  constexpr int kOps = 20000;
  constexpr int kKeys = 200;
  std::atomic<int64_t> loads{0};
  std::atomic<int64_t> evictions{0};
  RefCache<int, Counter> cache(
      32,
      [](const int& key, Counter& value) {
        absl::MutexLock lock(&value.mu);
        EXPECT_EQ(key, value.key);
        value.written = value.changes;
        return absl::OkStatus();
      },
      [&](const int& key, Counter& value) {
        EXPECT_EQ(key, value.key);
        evictions.fetch_add(1);
      });
  // Pins each thread holds, to give back at the end.
  std::vector<std::vector<std::pair<int, PinKind>>> pins(kThreads);
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      std::mt19937 rng(t);
      std::vector<RefCache<int, Counter>::Handle> held;
      for (int op = 0; op < kOps; ++op) {
        int key = static_cast<int>(rng() % kKeys);
        switch (rng() % 10) {
          case 0:
          case 1:
          case 2: {
            auto handle = cache.GetOrLoad(
                key, [&]() -> absl::StatusOr<std::unique_ptr<Counter>> {
                  loads.fetch_add(1);
                  if (rng() % 50 == 0) return absl::UnavailableError("flaky");
                  return std::make_unique<Counter>(key);
                });
            if (!handle.ok()) break;
            ASSERT_EQ((*handle)->key, key);
            if (rng() % 2) {
              absl::MutexLock lock(&(*handle)->mu);
              ++(*handle)->changes;
            }
            if (rng() % 2) cache.MarkDirty(*handle);
            if (rng() % 4 == 0) {
              PinKind kind = rng() % 2 ? PinKind::kLookup : PinKind::kOpen;
              cache.Pin(*handle, kind);
              pins[t].emplace_back(key, kind);
            }
            if (rng() % 3 == 0) held.push_back(*std::move(handle));
            break;
          }
          case 3: {
            auto handle = cache.GetIfCached(key);
            if (handle) {
              EXPECT_EQ((*handle)->key, key);
            }
            break;
          }
          case 4:
            if (!pins[t].empty()) {
              auto [k, kind] = pins[t].back();
              pins[t].pop_back();
              cache.Unpin(k, kind, 1);
            }
            break;
          case 5:
            if (!held.empty()) held.erase(held.begin());
            break;
          case 6:
            cache.Erase(key);
            break;
          case 7:
            if (op % 100 == 0) {
              EXPECT_TRUE(cache
                              .FlushDirty([](const int&, Counter& value) {
                                absl::MutexLock lock(&value.mu);
                                value.written = value.changes;
                                return absl::OkStatus();
                              })
                              .ok());
            }
            break;
          case 8:
            if (op % 500 == 0) cache.set_limit(16 + rng() % 32);
            break;
          default:
            cache.PinCount(key, PinKind::kLookup);
            cache.IsDirty(key);
            cache.size();
            break;
        }
        if (held.size() > 8) held.clear();
      }
    });
  }
  for (auto& thread : threads) thread.join();
  // Give back every pin: the cache must come back under its limit.
  for (auto& list : pins) {
    for (auto [key, kind] : list) cache.Unpin(key, kind, 1);
  }
  for (int key = 0; key < kKeys; ++key) {
    EXPECT_EQ(cache.PinCount(key, PinKind::kLookup), 0u);
    EXPECT_EQ(cache.PinCount(key, PinKind::kOpen), 0u);
  }
  EXPECT_LE(cache.size(), cache.limit());
  cache.Clear();
  EXPECT_EQ(cache.size(), 0u);
  CacheStats stats = cache.stats();
  EXPECT_EQ(static_cast<int64_t>(stats.evictions), evictions.load());
  EXPECT_EQ(static_cast<int64_t>(stats.misses), loads.load());
}

}  // namespace
}  // namespace cache
