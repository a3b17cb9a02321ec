// Process-wide state shared by all instances, behind one mutex: finished sequences keyed by
// (both keyframes' content, the settings), the jobs still running for a key, failures not worth
// retrying for a while, and daemons recently found down.
//
// One render at a time drives a key (submits its job, polls it, downloads the frames): hosts render
// a transition's frames on several threads and instances at once, and each of them submitting and
// downloading on its own gave duplicate jobs and downloads. The others wait for the sequence.
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

  // A daemon refusal or a failed job: later renders of the key show the fallback at once, until
  // the failure expires (LATENTWEEN_OFX_RETRY_S, default 60 s) and the key is tried again: the
  // daemon may have been fixed (a model installed, a full disk emptied) meanwhile.
  std::string failure(const std::string& key);
  void remember_failure(const std::string& key, const std::string& message);

  // true: `driver` now drives the key, and `out` is its job (an empty job_id: none submitted yet).
  // false: another render drives it; wait for the sequence and ask again.
  bool claim(const std::string& key, uint64_t driver, PendingJob& out);
  // The driver stops (done, failed or aborted); a submitted job stays for the next render to attach.
  void release(const std::string& key, uint64_t driver);
  // Records the job and returns the owner's other unfinished jobs nobody drives: its settings or
  // inputs changed, so nobody waits for those any more.
  std::vector<PendingJob> set_pending(const std::string& key, const PendingJob& job);
  void drop_pending(const std::string& key);
  // The owner's jobs, for cancelling; a job another instance is driving passes to that instance.
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
  struct Slot {
    PendingJob job;
    uint64_t driver = 0;  // the instance driving the key now; 0: nobody
  };
  std::chrono::seconds failure_memory_;
  std::map<std::string, std::pair<std::chrono::steady_clock::time_point, std::string>> failures_;
  std::map<std::string, Slot> pending_;
  std::map<std::string, std::pair<std::chrono::steady_clock::time_point, std::string>> down_;
};

}  // namespace latentween
