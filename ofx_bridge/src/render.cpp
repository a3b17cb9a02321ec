// The render action. In order:
//   1. read the Transition value, the settings and the images (keyframes at the transition's ends);
//   2. look the sequence up by (both keyframes' content, the settings);
//   3. thumbnails and scaled-down previews never start a job: last sequence or a cross-dissolve;
//   4. otherwise submit the job once (or attach to the one already running for this key), wait
//      with the host's progress bar while honouring its abort, download the frames and cache them;
//      one render drives a key at a time, concurrent renders of it wait (job_runner.cpp);
//   5. show the frame nearest the Transition value; the keyframes themselves are the inputs' pixels.
// Whatever goes wrong with the daemon, the output is a plain cross-dissolve and the host's
// message suite says why.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <memory>

#include "daemon_client.h"
#include "frame_cache.h"
#include "host.h"
#include "images.h"
#include "instance.h"
#include "job_runner.h"

namespace latentween {
namespace {

std::string hex(uint64_t value) {
  char text[17];
  std::snprintf(text, sizeof text, "%016llx", static_cast<unsigned long long>(value));
  return text;
}

std::string get_string(OfxParamHandle param, OfxTime time) {
  char* value = nullptr;
  if (!param || g_host.params->paramGetValueAtTime(param, time, &value) != kOfxStatOK || !value) return "";
  return value;
}

int get_int(OfxParamHandle param, OfxTime time, int fallback) {
  int value = fallback;
  if (!param || g_host.params->paramGetValueAtTime(param, time, &value) != kOfxStatOK) return fallback;
  return value;
}

std::string from_environment(const char* name, const std::string& fallback) {
  const char* value = std::getenv(name);
  return value && value[0] ? value : fallback;
}

// The transition's length from the host: the instance's effect duration, else the output's frame range.
int default_frames(const Instance& instance) {
  OfxPropertySetHandle props = nullptr;
  double duration = 0.0;
  if (g_host.effects->getPropertySet(instance.effect, &props) == kOfxStatOK)
    duration = prop_double(props, kOfxImageEffectInstancePropEffectDuration, 0, 0.0);
  double range[2] = {0.0, 0.0};
  if (!(duration > 0.0) && g_host.effects->clipGetPropertySet(instance.output, &props) == kOfxStatOK &&
      g_host.props->propGetDoubleN(props, kOfxImageEffectPropFrameRange, 2, range) == kOfxStatOK)
    duration = range[1] - range[0] + 1.0;
  if (!(duration > 0.0) || !std::isfinite(duration)) return 17;
  // One frame more than the transition lasts: every rendered frame then has its own generated one,
  // whether the host puts Transition=1 on the last frame or just past it.
  return static_cast<int>(std::clamp<long>(std::lround(duration) + 1, 3, kMaxFrames));
}

// Keyframes: SourceFrom where the transition starts, SourceTo where it ends, so that every frame of
// a transition between moving clips shares one job. Hosts that report no range use the render time.
void keyframe_times(const Instance& instance, OfxTime time, OfxTime& from, OfxTime& to) {
  from = to = time;
  OfxPropertySetHandle props = nullptr;
  double range[2] = {0.0, 0.0};
  if (instance.transition_context && g_host.effects->clipGetPropertySet(instance.output, &props) == kOfxStatOK &&
      g_host.props->propGetDoubleN(props, kOfxImageEffectPropFrameRange, 2, range) == kOfxStatOK &&
      range[1] > range[0]) {
    from = range[0];
    to = range[1];
  }
}

bool is_thumbnail(const Instance& instance) {
  for (OfxImageClipHandle clip : {instance.output, instance.from, instance.to}) {
    OfxPropertySetHandle props = nullptr;
    if (clip && g_host.effects->clipGetPropertySet(clip, &props) == kOfxStatOK &&
        prop_int(props, kOfxImageClipPropThumbnail, 0, 0) != 0)
      return true;
  }
  return false;
}

void warn(Instance& instance, const std::string& text) {
  if (instance.shown_warning == text) return;
  post_warning(instance.effect, text);
  instance.shown_warning = text;
}

OfxStatus show(Instance& instance, const Sequence& sequence, double amount, const ImageView& from,
               const ImageView& to, ImageView& out, const OfxRectI& window) {
  const int count = static_cast<int>(sequence.frames.size());
  const int index = static_cast<int>(std::lround(std::clamp(amount, 0.0, 1.0) * (count - 1)));
  if (index <= 0) {
    copy_image(from, out, window);
  } else if (index >= count - 1) {
    copy_image(to, out, window);
  } else {
    RgbaImage frame;
    std::string error;
    if (!decode_png(sequence.frames[static_cast<size_t>(index)], frame, error)) {
      warn(instance, error + kFallbackNote);
      cross_dissolve(&from, &to, amount, out, window);
      return kOfxStatOK;
    }
    write_frame(frame, from.bounds, out, window);
  }
  return kOfxStatOK;
}

}  // namespace

std::string RenderSettings::to_json() const {
  std::string json = "{\"frames\":" + std::to_string(frames) + ",\"prompt\":" + json_quote(prompt) +
                     ",\"negative\":" + json_quote(negative) + ",\"seed\":" + std::to_string(seed) +
                     ",\"steps\":" + std::to_string(steps) + ",\"pose\":" + (pose ? "\"auto\"" : "\"none\"");
  if (candidates > 0) json += ",\"candidates\":" + std::to_string(candidates);
  return json + "}";
}

RenderSettings read_settings(const Instance& instance, OfxTime time) {
  RenderSettings s;
  s.prompt = get_string(instance.prompt, time);
  s.negative = get_string(instance.negative, time);
  s.seed = std::max(0, get_int(instance.seed, time, 0));
  int frames = get_int(instance.frames, time, 0);
  s.frames = frames > 0 ? std::clamp(frames, 2, kMaxFrames) : default_frames(instance);
  s.steps = std::clamp(get_int(instance.steps, time, 40), 1, 1000);
  s.candidates = std::clamp(get_int(instance.candidates, time, 0), 0, 64);
  s.pose = get_int(instance.pose, time, 0) != 0;
  s.url = get_string(instance.url, time);
  if (s.url.empty()) s.url = from_environment("LATENTWEEN_SERVER", kDefaultDaemonUrl);
  s.token = get_string(instance.token, time);
  if (s.token.empty()) s.token = from_environment("LATENTWEEN_TOKEN", "");
  return s;
}

OfxStatus render(Instance& instance, OfxPropertySetHandle in_args) {
  // 1. What to render, with what.
  const OfxTime time = prop_double(in_args, kOfxPropTime);
  OfxRectI window{0, 0, 0, 0};
  g_host.props->propGetIntN(in_args, kOfxImageEffectPropRenderWindow, 4, &window.x1);
  const bool scaled = prop_double(in_args, kOfxImageEffectPropRenderScale, 0, 1.0) < 0.999 ||
                      prop_double(in_args, kOfxImageEffectPropRenderScale, 1, 1.0) < 0.999;
  double amount = 0.0;
  if (instance.transition) g_host.params->paramGetValueAtTime(instance.transition, time, &amount);
  amount = std::clamp(std::isfinite(amount) ? amount : 0.0, 0.0, 1.0);

  FetchedImage output(instance.output, time);
  if (!output.ok()) return kOfxStatFailed;
  if (!output.supported()) return kOfxStatErrImageFormat;
  ImageView out = output.view();
  FetchedImage now_from(instance.from, time), now_to(instance.to, time);
  auto dissolve = [&]() {
    cross_dissolve(now_from.ok() ? &now_from.view() : nullptr, now_to.ok() ? &now_to.view() : nullptr, amount, out,
                   window);
    return kOfxStatOK;
  };
  OfxTime from_time, to_time;
  keyframe_times(instance, time, from_time, to_time);
  std::unique_ptr<FetchedImage> far_from, far_to;
  const ImageView* from = now_from.ok() ? &now_from.view() : nullptr;
  const ImageView* to = now_to.ok() ? &now_to.view() : nullptr;
  if (from_time != time) {
    far_from = std::make_unique<FetchedImage>(instance.from, from_time);
    if (far_from->ok()) from = &far_from->view();
  }
  if (to_time != time) {
    far_to = std::make_unique<FetchedImage>(instance.to, to_time);
    if (far_to->ok()) to = &far_to->view();
  }
  for (const FetchedImage* image : {&now_from, &now_to, far_from.get(), far_to.get()}) {
    if (image && image->ok() && !image->supported()) return kOfxStatErrImageFormat;
  }
  if (!from || !to) return dissolve();  // an input without an image: nothing to morph between

  // 2. The cache.
  const RenderSettings settings = read_settings(instance, time);
  const std::string settings_json = settings.to_json();
  const std::string key = hex(content_hash(*from)) + hex(content_hash(*to)) + settings_json;
  std::shared_ptr<const Sequence> sequence = FrameCache::shared().find(key);

  // 3. Previews never start a job.
  const bool preview = scaled || is_thumbnail(instance);
  if (!sequence && preview) sequence = instance.last_sequence(settings_json);
  if (!sequence && preview) return dissolve();

  // 4. The job, once per key.
  if (!sequence) {
    std::string remembered = FrameCache::shared().failure(key);
    if (!remembered.empty()) {
      warn(instance, remembered);
      return dissolve();
    }
    JobOutcome outcome = run_job(instance, key, *from, *to, settings, settings_json);
    if (outcome.aborted) return kOfxStatFailed;  // the host discards this frame; nothing is cached
    if (!outcome.sequence) {
      warn(instance, outcome.message);
      return dissolve();
    }
    sequence = outcome.sequence;
  }
  if (!instance.shown_warning.empty()) {
    clear_warning(instance.effect);
    instance.shown_warning.clear();
  }
  instance.remember(settings_json, sequence);

  // 5. The frame nearest the Transition value.
  return show(instance, *sequence, amount, *from, *to, out, window);
}

OfxStatus frames_needed(const Instance& instance, OfxPropertySetHandle in_args, OfxPropertySetHandle out_args) {
  // Hosts that fetch only the frames declared here would otherwise refuse the keyframes at the
  // transition's ends, and every frame of a transition between moving clips would be its own job.
  const OfxTime time = prop_double(in_args, kOfxPropTime);
  OfxTime from_time, to_time;
  keyframe_times(instance, time, from_time, to_time);
  const std::pair<const char*, OfxTime> clips[] = {
      {"OfxImageClipPropFrameRange_" kOfxImageEffectTransitionSourceFromClipName, from_time},
      {"OfxImageClipPropFrameRange_" kOfxImageEffectTransitionSourceToClipName, to_time}};
  for (const auto& [name, keyframe] : clips) {
    const double ranges[4] = {time, time, keyframe, keyframe};
    g_host.props->propSetDoubleN(out_args, name, keyframe == time ? 2 : 4, ranges);
  }
  return kOfxStatOK;
}

void cancel_owned_jobs(const Instance& instance) {
  FrameCache& cache = FrameCache::shared();
  for (const PendingJob& job : cache.take_owned(instance.id)) {
    std::string down;  // a daemon just found down would only make the host wait here
    if (!cache.recently_unreachable(job.url, down)) DaemonClient(job.url, job.token).cancel(job.job_id);
  }
}

}  // namespace latentween
