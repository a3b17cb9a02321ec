// Process-wide state shared by all instances, behind one mutex: finished sequences keyed by
// (both keyframes' content, the settings), the jobs still running for a key, failures not worth
// retrying, and daemons recently found down.
//
// Sequences are kept as the daemon's PNG bytes, not decoded pixels: a 4K 16-bit frame is ~50 MB
// decoded and a few MB as PNG, and decoding one frame per render is cheap next to generating it.
#pragma once

#include <chrono>
#include <cstdint>
#include <list>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

namespace latentween {

struct Sequence {
  std::vector<std::string> frames;  // PNG per frame; 0 and size()-1 are the keyframes
  std::string settings;             // the settings part of the key
  size_t bytes() const;
};

struct PendingJob {
  std::string job_id;
  std::string url;
  std::string token;
  uint64_t owner = 0;  // the instance that submitted it
};

class FrameCache {
 public:
  static FrameCache& shared();

  std::shared_ptr<const Sequence> find(const std::string& key);
  void insert(const std::string& key, std::shared_ptr<const Sequence> sequence);
  void clear_sequences();

  // A daemon refusal or a failed job: later renders of the key show the fallback at once.
  std::string failure(const std::string& key);
  void remember_failure(const std::string& key, const std::string& message);

  bool pending(const std::string& key, PendingJob& out);
  // Records the job and returns the owner's other unfinished jobs: its settings or inputs changed,
  // so nobody waits for those any more.
  std::vector<PendingJob> set_pending(const std::string& key, const PendingJob& job);
  void drop_pending(const std::string& key);
  std::vector<PendingJob> take_owned(uint64_t owner);

  // A daemon that did not answer is not asked again for a few seconds, so exporting a long
  // timeline with the daemon down does not wait out a connect time-out on every frame.
  bool recently_unreachable(const std::string& url, std::string& message);
  void mark_unreachable(const std::string& url, const std::string& message);
  void mark_reachable(const std::string& url);

 private:
  FrameCache();
  void evict_locked();

  std::mutex mutex_;
  size_t budget_bytes_;
  size_t used_bytes_ = 0;
  std::list<std::string> recent_;  // most recently used first
  std::map<std::string, std::pair<std::shared_ptr<const Sequence>, std::list<std::string>::iterator>> sequences_;
  std::map<std::string, std::string> failures_;
  std::map<std::string, PendingJob> pending_;
  std::map<std::string, std::pair<std::chrono::steady_clock::time_point, std::string>> down_;
};

}  // namespace latentween
