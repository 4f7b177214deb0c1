// A generic, thread-safe, reference-counted object cache (key -> value).
//
// The engine keeps its in-core inodes (and metadata blocks) in it; the FUSE
// adapter's lookup counts and open counts are pins on its entries. The cache
// knows nothing of either: it is tested with plain integers and strings.
//
// Entries:
//  - A Handle is a counted reference to one entry. While any Handle exists
//    the entry stays in core and its value stays at the same address.
//  - Pins (one counter per PinKind) keep an entry in core with no Handle
//    alive. They are dropped by key, so a FUSE forget works after every
//    Handle is gone.
//  - A dirty entry is never dropped before it is written. If the cache was
//    given a write-back callback, an unreferenced dirty entry is written by it
//    when the LRU reaches it, then dropped; otherwise it stays in core until
//    FlushDirty() (or MarkClean()) makes it clean. An entry whose write-back
//    at eviction failed stays in core until FlushDirty() writes it.
//  - Unreferenced, unpinned entries that may be dropped sit in an LRU list.
//    Whenever the cache holds more entries than its limit (on every insert
//    and every release), the least recently released ones are dropped. When
//    every entry is in use the cache grows past the limit, and shrinks back
//    as entries are released.
//
// Loading: GetOrLoad() inserts a "loading" placeholder and runs the loader
// with no lock held, so loads of different keys run in parallel. Callers that
// ask for a key whose load is under way wait for that one load. A failed load
// is not cached: its placeholder is removed, the loader and every caller that
// was waiting for that load get its error, and the next GetOrLoad() of the
// key loads again. Loaders must not throw.
//
// Thread safety: every method may be called from any thread. One mutex guards
// the table and is never held while a loader, a write-back or eviction
// callback, or a value's destructor runs. The cache does not protect the
// values themselves: holders of Handles share the value and must synchronize
// their own access to it (the write-back callback is one such user, and may
// run while other threads hold Handles). Write-backs of one entry never
// overlap each other. Releasing a Handle, Unpin(), set_limit() and Clear()
// may run the write-back and eviction callbacks in the calling thread; while
// a write-back callback runs, evictions started from inside it skip dirty
// entries instead of starting a nested write-back.
//
// Lifetime: every Handle must be released before the cache is destroyed.
// Destroying the cache drops every entry without writing or reporting it:
// call FlushDirty() first.
#ifndef E4FS_CACHE_REF_CACHE_H_
#define E4FS_CACHE_REF_CACHE_H_

#include <cassert>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/functional/function_ref.h"
#include "absl/hash/hash.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"

namespace cache {

// The kinds of pins an entry carries, each counted separately.
enum class PinKind : int {
  kLookup = 0,  // the FUSE lookup count (nlookup)
  kOpen = 1,    // open file handles
};
inline constexpr int kNumPinKinds = 2;

struct CacheStats {
  uint64_t hits = 0;    // lookups served from core (GetOrLoad, GetIfCached)
  uint64_t misses = 0;  // loads started by GetOrLoad
  uint64_t load_failures = 0;
  uint64_t evictions = 0;   // entries dropped (LRU, Clear, Erase, set_limit)
  uint64_t writebacks = 0;  // successful write-backs at eviction
  uint64_t writeback_failures = 0;
};

namespace internal {

// How many write-back callbacks of any RefCache run in this thread.
inline int& WritebackDepth() {
  static thread_local int depth = 0;
  return depth;
}

class WritebackScope {
 public:
  WritebackScope() { ++WritebackDepth(); }
  ~WritebackScope() { --WritebackDepth(); }
  WritebackScope(const WritebackScope&) = delete;
  WritebackScope& operator=(const WritebackScope&) = delete;
};

}  // namespace internal

template <typename Key, typename Value, typename Hash = absl::Hash<Key>>
class RefCache {
 private:
  struct Entry;

 public:
  using WritebackFn = std::function<absl::Status(const Key&, Value&)>;
  using EvictFn = std::function<void(const Key&, Value&)>;
  using LoadFn = absl::FunctionRef<absl::StatusOr<std::unique_ptr<Value>>()>;
  using WriteFn = absl::FunctionRef<absl::Status(const Key&, Value&)>;

  // A counted reference to one entry. Copying takes another reference;
  // destroying or Reset() releases it. An empty (default-constructed or
  // moved-from) Handle refers to nothing.
  class Handle {
   public:
    Handle() = default;
    Handle(const Handle& other) : cache_(other.cache_), entry_(other.entry_) {
      if (entry_ != nullptr) cache_->AddRef(entry_);
    }
    Handle(Handle&& other) noexcept
        : cache_(std::exchange(other.cache_, nullptr)),
          entry_(std::exchange(other.entry_, nullptr)) {}
    Handle& operator=(const Handle& other) {
      if (this != &other) *this = Handle(other);
      return *this;
    }
    Handle& operator=(Handle&& other) noexcept {
      if (this != &other) {
        Reset();
        cache_ = std::exchange(other.cache_, nullptr);
        entry_ = std::exchange(other.entry_, nullptr);
      }
      return *this;
    }
    ~Handle() { Reset(); }

    // Releases the reference (if any) and leaves the Handle empty.
    void Reset() {
      if (entry_ != nullptr) {
        RefCache* cache = std::exchange(cache_, nullptr);
        cache->Release(std::exchange(entry_, nullptr));
      }
    }

    Value& operator*() const { return *entry_->value; }
    Value* operator->() const { return entry_->value.get(); }
    Value* get() const { return entry_ ? entry_->value.get() : nullptr; }
    const Key& key() const { return entry_->key; }
    explicit operator bool() const { return entry_ != nullptr; }

   private:
    friend class RefCache;
    // Adopts a reference already counted in `entry->refs`.
    Handle(RefCache* cache, Entry* entry) : cache_(cache), entry_(entry) {}

    RefCache* cache_ = nullptr;
    Entry* entry_ = nullptr;
  };

  // `limit` is a soft limit on the number of entries. `writeback`, if given,
  // writes a dirty entry before it is evicted. `on_evict`, if given, sees
  // every entry the cache drops (not those dropped by the destructor), with
  // no lock held, just before its value is destroyed.
  explicit RefCache(size_t limit, WritebackFn writeback = nullptr,
                    EvictFn on_evict = nullptr)
      : limit_(limit),
        writeback_(std::move(writeback)),
        on_evict_(std::move(on_evict)) {}

  RefCache(const RefCache&) = delete;
  RefCache& operator=(const RefCache&) = delete;

  ~RefCache() {
    for (auto& [key, entry] : map_) {
      assert(entry->refs == 0 && "a Handle outlived its RefCache");
      delete entry;
    }
  }

  // Returns the entry for `key`, running `load` (with no lock held) if it is
  // not in core. See the top of the file for concurrent and failed loads.
  absl::StatusOr<Handle> GetOrLoad(const Key& key, LoadFn load) {
    Entry* entry;
    Graveyard graveyard;
    {
      absl::MutexLock lock(&mu_);
      auto it = map_.find(key);
      if (it != map_.end()) {
        entry = it->second;
        ++entry->refs;
        UpdateLruLocked(entry);
        while (entry->state == State::kLoading) entry->cv.Wait(&mu_);
        if (entry->state == State::kReady) {
          ++stats_.hits;
          return Handle(this, entry);
        }
        absl::Status status = entry->load_status;
        if (--entry->refs == 0) delete entry;
        return status;
      }
      entry = new Entry(key);
      entry->refs = 1;
      map_.emplace(key, entry);
      ++stats_.misses;
      ShrinkLocked(limit_, &graveyard);
    }
    Bury(graveyard);

    absl::StatusOr<std::unique_ptr<Value>> loaded = load();
    if (loaded.ok() && *loaded == nullptr) {
      loaded = absl::InternalError("RefCache loader returned no value");
    }

    absl::MutexLock lock(&mu_);
    if (!loaded.ok()) {
      entry->state = State::kFailed;
      entry->load_status = loaded.status();
      map_.erase(key);
      ++stats_.load_failures;
      entry->cv.SignalAll();
      if (--entry->refs == 0) delete entry;
      return loaded.status();
    }
    entry->value = *std::move(loaded);
    entry->state = State::kReady;
    entry->cv.SignalAll();
    return Handle(this, entry);
  }

  // Returns the entry for `key` only if it is in core (an entry still being
  // loaded is not); never loads.
  std::optional<Handle> GetIfCached(const Key& key) {
    absl::MutexLock lock(&mu_);
    auto it = map_.find(key);
    if (it == map_.end() || it->second->state != State::kReady) {
      return std::nullopt;
    }
    Entry* entry = it->second;
    ++entry->refs;
    UpdateLruLocked(entry);
    ++stats_.hits;
    return Handle(this, entry);
  }

  // Whether `key` is in core (loaded), without taking a reference.
  bool Contains(const Key& key) const {
    absl::MutexLock lock(&mu_);
    auto it = map_.find(key);
    return it != map_.end() && it->second->state == State::kReady;
  }

  // Adds `n` pins of `kind` (saturating) to the entry of `handle`.
  void Pin(const Handle& handle, PinKind kind, uint64_t n = 1) {
    assert(handle.cache_ == this);
    absl::MutexLock lock(&mu_);
    uint64_t& pins = handle.entry_->pins[Index(kind)];
    pins = (pins > UINT64_MAX - n) ? UINT64_MAX : pins + n;
  }

  // Drops up to `n` pins of `kind` from the entry of `key` (never below zero)
  // and returns how many pins of that kind remain; 0 if `key` is not in core.
  // An entry left with no pins and no Handles becomes evictable at once.
  uint64_t Unpin(const Key& key, PinKind kind, uint64_t n) {
    Graveyard graveyard;
    uint64_t remaining = 0;
    {
      absl::MutexLock lock(&mu_);
      auto it = map_.find(key);
      if (it == map_.end() || it->second->state != State::kReady) return 0;
      Entry* entry = it->second;
      uint64_t& pins = entry->pins[Index(kind)];
      pins -= (n < pins) ? n : pins;
      remaining = pins;
      SettleLocked(entry, &graveyard);
    }
    Bury(graveyard);
    return remaining;
  }

  // Pins of `kind` held on `key`; 0 if it is not in core.
  uint64_t PinCount(const Key& key, PinKind kind) const {
    absl::MutexLock lock(&mu_);
    auto it = map_.find(key);
    return it == map_.end() ? 0 : it->second->pins[Index(kind)];
  }

  // Marks the entry of `handle` as changed in core and not yet written.
  void MarkDirty(const Handle& handle) {
    assert(handle.cache_ == this);
    absl::MutexLock lock(&mu_);
    Entry* entry = handle.entry_;
    ++entry->dirty_generation;
    if (!entry->dirty) {
      entry->dirty = true;
      dirty_.insert(entry);
    }
  }

  // Drops the dirty state of the entry of `handle` without writing it (for
  // an object that no longer needs writing, such as a deleted inode).
  void MarkClean(const Handle& handle) {
    assert(handle.cache_ == this);
    absl::MutexLock lock(&mu_);
    Entry* entry = handle.entry_;
    ++entry->dirty_generation;
    entry->writeback_failed = false;
    if (entry->dirty) {
      entry->dirty = false;
      dirty_.erase(entry);
    }
  }

  bool IsDirty(const Key& key) const {
    absl::MutexLock lock(&mu_);
    auto it = map_.find(key);
    return it != map_.end() && it->second->dirty;
  }

  // Writes every entry that is dirty when it is called with `write` (no lock
  // held), clearing the dirty flag of each one written successfully (unless
  // it was marked dirty again meanwhile). Waits for a write-back of the same
  // entry already under way. Tries every entry and returns the first error.
  absl::Status FlushDirty(WriteFn write) {
    std::vector<Entry*> batch;
    {
      absl::MutexLock lock(&mu_);
      batch.reserve(dirty_.size());
      for (Entry* entry : dirty_) {
        ++entry->refs;
        UpdateLruLocked(entry);
        batch.push_back(entry);
      }
    }
    absl::Status result;
    for (Entry* entry : batch) {
      Graveyard graveyard;
      uint64_t generation = 0;
      {
        absl::MutexLock lock(&mu_);
        while (entry->writing) entry->cv.Wait(&mu_);
        if (!entry->dirty) {
          UnrefLocked(entry, &graveyard);
          entry = nullptr;
        } else {
          entry->writing = true;
          generation = entry->dirty_generation;
        }
      }
      if (entry != nullptr) {
        absl::Status status;
        {
          internal::WritebackScope scope;
          status = write(entry->key, *entry->value);
        }
        absl::MutexLock lock(&mu_);
        FinishWriteLocked(entry, status, generation);
        if (!status.ok() && result.ok()) result = status;
        UnrefLocked(entry, &graveyard);
      }
      Bury(graveyard);
    }
    return result;
  }

  // Drops the entry of `key` if it is in core with no Handle, no pin and no
  // unwritten change; returns whether it did.
  bool Erase(const Key& key) {
    Graveyard graveyard;
    {
      absl::MutexLock lock(&mu_);
      auto it = map_.find(key);
      if (it == map_.end()) return false;
      Entry* entry = it->second;
      if (!EvictableLocked(entry) || entry->dirty) return false;
      RemoveFromLruLocked(entry);
      DropLocked(entry, &graveyard);
    }
    Bury(graveyard);
    return true;
  }

  // Drops every evictable entry (writing dirty ones back first if the cache
  // has a write-back callback). Entries in use or pinned stay.
  void Clear() {
    Graveyard graveyard;
    {
      absl::MutexLock lock(&mu_);
      ShrinkLocked(0, &graveyard);
    }
    Bury(graveyard);
  }

  // Entries in core, including those being loaded.
  size_t size() const {
    absl::MutexLock lock(&mu_);
    return map_.size();
  }

  size_t limit() const {
    absl::MutexLock lock(&mu_);
    return limit_;
  }

  // Changes the limit, evicting at once down to it if possible.
  void set_limit(size_t limit) {
    Graveyard graveyard;
    {
      absl::MutexLock lock(&mu_);
      limit_ = limit;
      ShrinkLocked(limit_, &graveyard);
    }
    Bury(graveyard);
  }

  CacheStats stats() const {
    absl::MutexLock lock(&mu_);
    return stats_;
  }

 private:
  enum class State { kLoading, kReady, kFailed };

  // All fields but `key` (immutable) and `value` (set once before the entry
  // becomes kReady, then constant) are guarded by mu_.
  struct Entry {
    explicit Entry(const Key& k) : key(k) {}

    const Key key;
    std::unique_ptr<Value> value;
    State state = State::kLoading;
    absl::Status load_status;  // when kFailed
    uint64_t refs = 0;         // Handles, waiters and write-backs under way
    uint64_t pins[kNumPinKinds] = {};
    bool dirty = false;
    bool writing = false;  // a write-back of this entry is under way
    bool writeback_failed = false;
    uint64_t dirty_generation = 0;  // bumped by MarkDirty/MarkClean
    bool in_lru = false;
    Entry* older = nullptr;  // LRU links
    Entry* newer = nullptr;
    absl::CondVar cv;  // signalled when `state` or `writing` changes
  };

  // Entries removed from the table, destroyed once the lock is released.
  using Graveyard = std::vector<Entry*>;

  static int Index(PinKind kind) { return static_cast<int>(kind); }

  void AddRef(Entry* entry) {
    absl::MutexLock lock(&mu_);
    ++entry->refs;
  }

  void Release(Entry* entry) {
    Graveyard graveyard;
    {
      absl::MutexLock lock(&mu_);
      UnrefLocked(entry, &graveyard);
    }
    Bury(graveyard);
  }

  void UnrefLocked(Entry* entry, Graveyard* graveyard)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    assert(entry->refs > 0);
    --entry->refs;
    SettleLocked(entry, graveyard);
  }

  // Puts `entry` on or off the LRU list after a change, and shrinks the
  // cache if it is over its limit.
  void SettleLocked(Entry* entry, Graveyard* graveyard)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    UpdateLruLocked(entry);
    if (map_.size() > limit_) ShrinkLocked(limit_, graveyard);
  }

  bool EvictableLocked(const Entry* entry) const
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    if (entry->state != State::kReady || entry->refs != 0 || entry->writing) {
      return false;
    }
    for (uint64_t pins : entry->pins) {
      if (pins != 0) return false;
    }
    return !entry->dirty || (writeback_ && !entry->writeback_failed);
  }

  // Puts `entry` on the LRU list (as the newest, or the oldest if
  // `as_oldest`) if it is evictable, and takes it off if not.
  void UpdateLruLocked(Entry* entry, bool as_oldest = false)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    bool evictable = EvictableLocked(entry);
    if (evictable == entry->in_lru) return;
    if (!evictable) {
      RemoveFromLruLocked(entry);
      return;
    }
    entry->in_lru = true;
    if (as_oldest) {
      entry->older = nullptr;
      entry->newer = oldest_;
      (oldest_ ? oldest_->older : newest_) = entry;
      oldest_ = entry;
    } else {
      entry->newer = nullptr;
      entry->older = newest_;
      (newest_ ? newest_->newer : oldest_) = entry;
      newest_ = entry;
    }
  }

  void RemoveFromLruLocked(Entry* entry) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    if (!entry->in_lru) return;
    (entry->older ? entry->older->newer : oldest_) = entry->newer;
    (entry->newer ? entry->newer->older : newest_) = entry->older;
    entry->older = entry->newer = nullptr;
    entry->in_lru = false;
  }

  // Removes an entry (already off the LRU list) from the table.
  void DropLocked(Entry* entry, Graveyard* graveyard)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    if (entry->dirty) dirty_.erase(entry);
    map_.erase(entry->key);
    graveyard->push_back(entry);
    ++stats_.evictions;
  }

  // Records the end of a write-back of `entry` that started at
  // `generation`.
  void FinishWriteLocked(Entry* entry, const absl::Status& status,
                         uint64_t generation)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    entry->writing = false;
    entry->cv.SignalAll();
    if (!status.ok()) {
      entry->writeback_failed = true;
      return;
    }
    entry->writeback_failed = false;
    if (entry->dirty && entry->dirty_generation == generation) {
      entry->dirty = false;
      dirty_.erase(entry);
    }
  }

  // Evicts the least recently used evictable entries until at most `target`
  // remain or none is evictable. Dirty entries are written back first with
  // the lock released (which is why this may let other threads in).
  void ShrinkLocked(size_t target, Graveyard* graveyard)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    Entry* entry = oldest_;
    while (map_.size() > target && entry != nullptr) {
      if (!entry->dirty) {
        Entry* next = entry->newer;
        RemoveFromLruLocked(entry);
        DropLocked(entry, graveyard);
        entry = next;
        continue;
      }
      if (internal::WritebackDepth() > 0) {
        entry = entry->newer;  // no nested write-back: skip it
        continue;
      }
      RemoveFromLruLocked(entry);
      ++entry->refs;
      entry->writing = true;
      uint64_t generation = entry->dirty_generation;
      mu_.Unlock();
      absl::Status status;
      {
        internal::WritebackScope scope;
        status = writeback_(entry->key, *entry->value);
      }
      mu_.Lock();
      FinishWriteLocked(entry, status, generation);
      ++(status.ok() ? stats_.writebacks : stats_.writeback_failures);
      --entry->refs;
      // If still evictable, it is the next to go; the list may have changed
      // while the lock was released, so start again from the oldest.
      UpdateLruLocked(entry, /*as_oldest=*/true);
      entry = oldest_;
    }
  }

  // Destroys dropped entries; called with no lock held.
  void Bury(Graveyard& graveyard) {
    for (Entry* entry : graveyard) {
      if (on_evict_) on_evict_(entry->key, *entry->value);
      delete entry;
    }
    graveyard.clear();
  }

  mutable absl::Mutex mu_;
  absl::flat_hash_map<Key, Entry*, Hash> map_ ABSL_GUARDED_BY(mu_);
  absl::flat_hash_set<Entry*> dirty_ ABSL_GUARDED_BY(mu_);
  Entry* oldest_ ABSL_GUARDED_BY(mu_) = nullptr;
  Entry* newest_ ABSL_GUARDED_BY(mu_) = nullptr;
  size_t limit_ ABSL_GUARDED_BY(mu_);
  CacheStats stats_ ABSL_GUARDED_BY(mu_);
  const WritebackFn writeback_;
  const EvictFn on_evict_;
};

}  // namespace cache

#endif  // E4FS_CACHE_REF_CACHE_H_
