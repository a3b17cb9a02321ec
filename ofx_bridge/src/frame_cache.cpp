#include "frame_cache.h"

#include <cstdlib>

namespace latentween {
namespace {

constexpr size_t kDefaultBudgetMb = 2048;
constexpr size_t kMaxFailures = 256;
constexpr std::chrono::seconds kDownFor(10);
constexpr long kDefaultFailureSeconds = 60;

long positive_from_environment(const char* name, long fallback) {
  const char* text = std::getenv(name);
  long value = text ? std::strtol(text, nullptr, 10) : 0;
  return value > 0 ? value : fallback;
}

}  // namespace

size_t Sequence::bytes() const {
  size_t total = settings.size();
  for (const auto& frame : frames) total += frame.size();
  return total;
}

FrameCache::FrameCache()
    : budget_bytes_(static_cast<size_t>(positive_from_environment("LATENTWEEN_OFX_CACHE_MB", kDefaultBudgetMb)) << 20),
      failure_memory_(positive_from_environment("LATENTWEEN_OFX_RETRY_S", kDefaultFailureSeconds)) {}

FrameCache& FrameCache::shared() {
  static FrameCache cache;  // constructed on first use, from any thread (C++11 guarantees it once)
  return cache;
}

std::shared_ptr<const Sequence> FrameCache::find(const std::string& key) {
  std::lock_guard<std::mutex> lock(mutex_);
  auto it = sequences_.find(key);
  if (it == sequences_.end()) return nullptr;
  recent_.splice(recent_.begin(), recent_, it->second.second);
  return it->second.first;
}

void FrameCache::insert(const std::string& key, std::shared_ptr<const Sequence> sequence) {
  std::lock_guard<std::mutex> lock(mutex_);
  auto it = sequences_.find(key);
  if (it != sequences_.end()) {
    used_bytes_ -= it->second.first->bytes();
    recent_.erase(it->second.second);
    sequences_.erase(it);
  }
  used_bytes_ += sequence->bytes();
  recent_.push_front(key);
  sequences_[key] = {std::move(sequence), recent_.begin()};
  failures_.erase(key);
  evict_locked();
}

void FrameCache::evict_locked() {
  // The newest sequence stays even when it alone is over the budget: the render needs it now.
  while (used_bytes_ > budget_bytes_ && recent_.size() > 1) {
    auto it = sequences_.find(recent_.back());
    used_bytes_ -= it->second.first->bytes();
    sequences_.erase(it);
    recent_.pop_back();
  }
}

void FrameCache::clear_sequences() {
  std::lock_guard<std::mutex> lock(mutex_);
  sequences_.clear();
  recent_.clear();
  used_bytes_ = 0;
}

std::string FrameCache::failure(const std::string& key) {
  std::lock_guard<std::mutex> lock(mutex_);
  auto it = failures_.find(key);
  if (it == failures_.end()) return "";
  if (std::chrono::steady_clock::now() - it->second.first > failure_memory_) {
    failures_.erase(it);
    return "";
  }
  return it->second.second;
}

void FrameCache::remember_failure(const std::string& key, const std::string& message) {
  std::lock_guard<std::mutex> lock(mutex_);
  if (failures_.size() >= kMaxFailures) failures_.clear();
  failures_[key] = {std::chrono::steady_clock::now(), message};
}

bool FrameCache::claim(const std::string& key, uint64_t driver, PendingJob& out) {
  std::lock_guard<std::mutex> lock(mutex_);
  Slot& slot = pending_[key];
  if (slot.driver != 0 && slot.driver != driver) return false;
  slot.driver = driver;
  out = slot.job;
  return true;
}

void FrameCache::release(const std::string& key, uint64_t driver) {
  std::lock_guard<std::mutex> lock(mutex_);
  auto it = pending_.find(key);
  if (it == pending_.end() || it->second.driver != driver) return;
  if (it->second.job.job_id.empty()) {
    pending_.erase(it);  // nothing was submitted: the next render starts afresh
  } else {
    it->second.driver = 0;
  }
}

std::vector<PendingJob> FrameCache::set_pending(const std::string& key, const PendingJob& job) {
  std::lock_guard<std::mutex> lock(mutex_);
  std::vector<PendingJob> stale;
  for (auto it = pending_.begin(); it != pending_.end();) {
    const Slot& slot = it->second;
    if (it->first != key && slot.job.owner == job.owner && slot.driver == 0 && !slot.job.job_id.empty()) {
      stale.push_back(slot.job);
      it = pending_.erase(it);
    } else {
      ++it;
    }
  }
  pending_[key].job = job;
  return stale;
}

void FrameCache::drop_pending(const std::string& key) {
  std::lock_guard<std::mutex> lock(mutex_);
  pending_.erase(key);
}

std::vector<PendingJob> FrameCache::take_owned(uint64_t owner) {
  std::lock_guard<std::mutex> lock(mutex_);
  std::vector<PendingJob> owned;
  for (auto it = pending_.begin(); it != pending_.end();) {
    Slot& slot = it->second;
    if (slot.job.owner != owner || slot.job.job_id.empty()) {
      ++it;
    } else if (slot.driver != 0 && slot.driver != owner) {
      slot.job.owner = slot.driver;  // someone still waits for it
      ++it;
    } else {
      owned.push_back(slot.job);
      it = pending_.erase(it);
    }
  }
  return owned;
}

bool FrameCache::recently_unreachable(const std::string& url, std::string& message) {
  std::lock_guard<std::mutex> lock(mutex_);
  auto it = down_.find(url);
  if (it == down_.end()) return false;
  if (std::chrono::steady_clock::now() - it->second.first > kDownFor) {
    down_.erase(it);
    return false;
  }
  message = it->second.second;
  return true;
}

void FrameCache::mark_unreachable(const std::string& url, const std::string& message) {
  std::lock_guard<std::mutex> lock(mutex_);
  down_[url] = {std::chrono::steady_clock::now(), message};
}

void FrameCache::mark_reachable(const std::string& url) {
  std::lock_guard<std::mutex> lock(mutex_);
  down_.erase(url);
}

}  // namespace latentween
