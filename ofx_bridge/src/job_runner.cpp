#include "job_runner.h"

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <thread>

#include "daemon_client.h"
#include "host.h"

namespace latentween {

const char* const kFallbackNote = " - showing a cross-dissolve instead.";

namespace {

class Progress {
 public:
  explicit Progress(OfxImageEffectHandle effect) : effect_(effect) {
    if (g_host.progress && g_host.progress->progressStart)
      started_ = g_host.progress->progressStart(effect_, "Latentween: generating the in-between frames") == kOfxStatOK;
  }
  ~Progress() {
    if (started_) g_host.progress->progressEnd(effect_);
  }
  Progress(const Progress&) = delete;
  Progress& operator=(const Progress&) = delete;

  void update(double fraction) {
    if (started_ && g_host.progress->progressUpdate(effect_, std::clamp(fraction, 0.0, 1.0)) == kOfxStatReplyNo)
      cancelled_ = true;  // the user pressed the progress bar's cancel button
  }
  // Once the host said abort, it is not asked again: the answer stands for the rest of the render.
  bool aborted() {
    if (!cancelled_ && g_host.effects->abort(effect_) != 0) cancelled_ = true;
    return cancelled_;
  }

 private:
  OfxImageEffectHandle effect_;
  bool started_ = false;
  bool cancelled_ = false;
};

// Stops driving a key on every way out of run_job.
class Driving {
 public:
  Driving(std::string key, uint64_t driver) : key_(std::move(key)), driver_(driver) {}
  ~Driving() { FrameCache::shared().release(key_, driver_); }
  Driving(const Driving&) = delete;
  Driving& operator=(const Driving&) = delete;

 private:
  std::string key_;
  uint64_t driver_;
};

// Sleeps in short slices so an abort is seen within ~25 ms.
bool wait_or_abort(Progress& progress, std::chrono::milliseconds total) {
  const auto slice = std::chrono::milliseconds(25);
  for (auto waited = std::chrono::milliseconds(0); waited < total; waited += slice) {
    if (progress.aborted()) return true;
    std::this_thread::sleep_for(slice);
  }
  return progress.aborted();
}

// Refusals that depend only on the settings or the keyframes: the same key would be refused again.
bool refusal_is_final(const Reply& reply) {
  return reply.kind == Reply::Kind::Refused && (reply.status == 413 || reply.status == 415 || reply.status == 422);
}

JobOutcome failure(const std::string& message) { return JobOutcome{nullptr, false, message + kFallbackNote}; }
JobOutcome aborted() { return JobOutcome{nullptr, true, ""}; }  // the job goes on; the next render attaches

std::string count_text(double value) {
  char text[32];
  std::snprintf(text, sizeof text, "%.6g", value);
  return text;
}

// A frame is a PNG of the keyframes' size at most 16 bits a sample: an answer far larger is no frame.
size_t frame_limit(const ImageView& keyframe) {
  return (size_t{64} << 20) + 2 * static_cast<size_t>(keyframe.width()) * static_cast<size_t>(keyframe.height()) * 8;
}

// A daemon that did not answer is not asked again for a while, whatever the request was.
void note_reachability(const DaemonClient& client, const Reply& reply) {
  if (reply.kind == Reply::Kind::Unreachable) FrameCache::shared().mark_unreachable(client.url(), reply.message);
}

JobOutcome submit(Instance& instance, const DaemonClient& client, const std::string& key, const ImageView& from,
                  const ImageView& to, const RenderSettings& settings, const std::string& settings_json,
                  PendingJob& job) {
  FrameCache& cache = FrameCache::shared();
  std::vector<unsigned char> from_png, to_png;
  std::string error;
  if (!encode_png(to_rgba(from), from_png, error) || !encode_png(to_rgba(to), to_png, error)) return failure(error);
  Reply reply = client.submit(from_png, to_png, settings_json);
  if (reply.kind == Reply::Kind::Aborted) return aborted();
  note_reachability(client, reply);
  if (refusal_is_final(reply)) cache.remember_failure(key, reply.message + kFallbackNote);
  if (!reply.ok()) return failure(reply.message);
  job = PendingJob{reply.json["id"].str(), client.url(), settings.token, instance.id};
  if (!DaemonClient::plain_id(job.job_id)) return failure("the daemon's answer to the job submission had no job id");
  for (const PendingJob& stale : cache.set_pending(key, job)) {
    std::string down;
    if (!cache.recently_unreachable(stale.url, down)) DaemonClient(stale.url, stale.token).cancel(stale.job_id);
  }
  return JobOutcome{};
}

// Polls the job until it is done. The daemon's frame count must be the one asked for: it decides how
// many frames are downloaded and how much memory they take, so it is not taken on trust.
JobOutcome follow(Progress& progress, const DaemonClient& client, const std::string& key, const PendingJob& job,
                  const RenderSettings& settings) {
  FrameCache& cache = FrameCache::shared();
  auto interval = std::chrono::milliseconds(50);
  while (true) {
    if (progress.aborted()) return aborted();
    Reply reply = client.job(job.job_id);
    if (reply.kind == Reply::Kind::Aborted) return aborted();
    note_reachability(client, reply);
    if (!reply.ok()) {
      if (reply.status == 404) cache.drop_pending(key);  // the daemon's state was wiped: submit afresh
      return failure(reply.message);
    }
    const std::string state = reply.json["state"].str();
    const Json& done = reply.json["progress"];
    double total = done["total"].num();
    progress.update(total > 0 ? 0.9 * done["done"].num() / total : 0.0);
    if (state == "done") {
      const double count = reply.json["frame_count"].num(-1.0);
      if (count != static_cast<double>(settings.frames)) {
        cache.drop_pending(key);
        std::string why = "job " + job.job_id + " made " + count_text(count) + " frames where " +
                          std::to_string(settings.frames) + " were asked";
        cache.remember_failure(key, why + kFallbackNote);
        return failure(why);
      }
      return JobOutcome{};
    }
    if (state == "failed" || state == "cancelled" || state == "awaiting-choice") {
      cache.drop_pending(key);
      std::string error = reply.json["error"].str();
      std::string why = "job " + job.job_id + " " + state + (error.empty() ? "" : ": " + error);
      if (state == "failed") cache.remember_failure(key, why + kFallbackNote);
      return failure(why);
    }
    if (wait_or_abort(progress, interval)) return aborted();
    interval = std::min(interval * 2, std::chrono::milliseconds(500));
  }
}

// Another render drives the key: wait for its sequence, or for the key to be free to drive.
// Returns true with `outcome` set when waiting ended the matter.
bool wait_for_driver(Progress& progress, const std::string& key, uint64_t id, PendingJob& job, JobOutcome& outcome) {
  FrameCache& cache = FrameCache::shared();
  while (!cache.claim(key, id, job)) {
    if (wait_or_abort(progress, std::chrono::milliseconds(25))) {
      outcome = aborted();
      return true;
    }
    if (auto sequence = cache.find(key)) {
      outcome = JobOutcome{sequence, false, ""};
      return true;
    }
    std::string remembered = cache.failure(key);
    if (!remembered.empty()) {
      outcome = JobOutcome{nullptr, false, remembered};
      return true;
    }
  }
  return false;
}

}  // namespace

JobOutcome run_job(Instance& instance, const std::string& key, const ImageView& from, const ImageView& to,
                   const RenderSettings& settings, const std::string& settings_json) {
  FrameCache& cache = FrameCache::shared();
  Progress progress(instance.effect);
  DaemonClient client(settings.url, settings.token, [&progress] { return progress.aborted(); });
  PendingJob job;
  JobOutcome outcome;
  if (wait_for_driver(progress, key, instance.id, job, outcome)) return outcome;
  Driving driving(key, instance.id);
  // The driver before this one may have finished while this render waited for the lock.
  if (auto sequence = cache.find(key)) return JobOutcome{sequence, false, ""};

  // Every way of asking the daemon first checks that it was not just found down.
  std::string down;
  if (cache.recently_unreachable(client.url(), down)) return failure(down);
  if (job.job_id.empty() || job.url != client.url()) {
    outcome = submit(instance, client, key, from, to, settings, settings_json, job);
    if (outcome.aborted || !outcome.message.empty()) return outcome;
  }
  outcome = follow(progress, client, key, job, settings);
  if (outcome.aborted || !outcome.message.empty()) return outcome;

  const int frame_count = settings.frames;
  const size_t limit = frame_limit(from);
  auto sequence = std::make_shared<Sequence>();
  sequence->settings = settings_json;
  sequence->frames.resize(static_cast<size_t>(frame_count));
  // Frames 0 and N-1 are the keyframes: the render shows the inputs' own pixels there.
  for (int index = 1; index + 1 < frame_count; ++index) {
    if (progress.aborted()) return aborted();
    Reply reply = client.frame(job.job_id, index, limit);
    if (reply.kind == Reply::Kind::Aborted) return aborted();
    note_reachability(client, reply);
    if (!reply.ok()) return failure(reply.message);
    sequence->frames[static_cast<size_t>(index)] = std::move(reply.body);
    progress.update(0.9 + 0.1 * index / (frame_count - 1));
  }
  cache.insert(key, sequence);
  cache.drop_pending(key);
  return JobOutcome{sequence, false, ""};
}

}  // namespace latentween
