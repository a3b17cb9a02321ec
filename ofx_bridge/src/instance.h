// One effect instance: its clips and parameters, looked up once at creation, and what it last
// showed the user.
#pragma once

#include <cstdint>
#include <memory>
#include <mutex>
#include <string>

#include "frame_cache.h"
#include "ofx_minimal.h"

namespace latentween {

// Parameter names, as hosts save them in projects: never rename.
namespace param {
constexpr const char* kPrompt = "prompt";
constexpr const char* kNegative = "negative";
constexpr const char* kSeed = "seed";
constexpr const char* kFrames = "frames";
constexpr const char* kSteps = "steps";
constexpr const char* kCandidates = "candidates";
constexpr const char* kPose = "pose";
constexpr const char* kDaemonUrl = "daemonUrl";
constexpr const char* kToken = "token";
}  // namespace param

constexpr const char* kDefaultDaemonUrl = "http://127.0.0.1:8642";
constexpr int kMaxFrames = 4096;

struct Instance {
  OfxImageEffectHandle effect = nullptr;
  uint64_t id = 0;
  bool transition_context = true;
  OfxImageClipHandle from = nullptr, to = nullptr, output = nullptr;
  OfxParamHandle transition = nullptr, prompt = nullptr, negative = nullptr, seed = nullptr, frames = nullptr,
                 steps = nullptr, candidates = nullptr, pose = nullptr, url = nullptr, token = nullptr;

  std::string shown_warning;  // hosts without persistent messages get each warning once

  // The last sequence shown, for scaled-down previews. A host may purge caches on another thread
  // while this instance renders, hence the lock.
  std::shared_ptr<const Sequence> last_sequence(const std::string& settings) {
    std::lock_guard<std::mutex> lock(last_mutex_);
    return last_settings_ == settings ? last_sequence_ : nullptr;
  }
  void remember(const std::string& settings, std::shared_ptr<const Sequence> sequence) {
    std::lock_guard<std::mutex> lock(last_mutex_);
    last_settings_ = settings;
    last_sequence_ = std::move(sequence);
  }
  void forget_last() {
    std::lock_guard<std::mutex> lock(last_mutex_);
    last_sequence_.reset();
  }

 private:
  std::mutex last_mutex_;
  std::string last_settings_;
  std::shared_ptr<const Sequence> last_sequence_;
};

// The settings of one render, read from the parameters at its time.
struct RenderSettings {
  std::string prompt, negative, url, token;
  int seed = 0, frames = 0, steps = 40, candidates = 0;
  bool pose = false;

  // The MorphSettings JSON sent to the daemon; it is also the settings part of the cache key, so
  // only what changes pixels is in it (not the URL or the token).
  std::string to_json() const;
};

Instance* instance_of(OfxImageEffectHandle effect);
RenderSettings read_settings(const Instance& instance, OfxTime time);
OfxStatus render(Instance& instance, OfxPropertySetHandle in_args);
// The frames each input is read at: the keyframes' times and the render time.
OfxStatus frames_needed(const Instance& instance, OfxPropertySetHandle in_args, OfxPropertySetHandle out_args);
void cancel_owned_jobs(const Instance& instance);

}  // namespace latentween
