#include "frame_cache.h"

#include <cstdlib>

namespace latentween {
namespace {

constexpr size_t kDefaultBudgetMb = 2048;
constexpr size_t kMaxFailures = 256;
constexpr std::chrono::seconds kDownFor(10);

size_t budget_from_environment() {
  const char* text = std::getenv("LATENTWEEN_OFX_CACHE_MB");
  long mb = text ? std::strtol(text, nullptr, 10) : 0;
  return static_cast<size_t>(mb > 0 ? mb : static_cast<long>(kDefaultBudgetMb)) * 1024 * 1024;
}

}  // namespace

size_t Sequence::bytes() const {
  size_t total = settings.size();
  for (const auto& frame : frames) total += frame.size();
  return total;
}

FrameCache::FrameCache() : budget_bytes_(budget_from_environment()) {}

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
  return it == failures_.end() ? "" : it->second;
}

void FrameCache::remember_failure(const std::string& key, const std::string& message) {
  std::lock_guard<std::mutex> lock(mutex_);
  if (failures_.size() >= kMaxFailures) failures_.clear();
  failures_[key] = message;
}

bool FrameCache::pending(const std::string& key, PendingJob& out) {
  std::lock_guard<std::mutex> lock(mutex_);
  auto it = pending_.find(key);
  if (it == pending_.end()) return false;
  out = it->second;
  return true;
}

std::vector<PendingJob> FrameCache::set_pending(const std::string& key, const PendingJob& job) {
  std::lock_guard<std::mutex> lock(mutex_);
  std::vector<PendingJob> stale;
  for (auto it = pending_.begin(); it != pending_.end();) {
    if (it->first != key && it->second.owner == job.owner) {
      stale.push_back(it->second);
      it = pending_.erase(it);
    } else {
      ++it;
    }
  }
  pending_[key] = job;
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
    if (it->second.owner == owner) {
      owned.push_back(it->second);
      it = pending_.erase(it);
    } else {
      ++it;
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
