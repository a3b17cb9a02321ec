// The plug-in's face to the host: the exported entry points, the describe actions and the
// instance life cycle. Rendering is in render.cpp. No C++ exception crosses into the host: the
// main entry catches everything and answers kOfxStatErrFatal or kOfxStatErrMemory.
#include <atomic>
#include <climits>
#include <cstring>
#include <new>
#include <string>

#include "daemon_client.h"
#include "frame_cache.h"
#include "host.h"
#include "instance.h"

namespace latentween {
namespace {

std::atomic<uint64_t> g_next_instance{1};

void set_strings(OfxPropertySetHandle set, const char* name, std::initializer_list<const char*> values) {
  int index = 0;
  for (const char* value : values) g_host.props->propSetString(set, name, index++, value);
}

OfxStatus describe(OfxImageEffectHandle effect) {
  OfxPropertySetHandle props = nullptr;
  if (g_host.effects->getPropertySet(effect, &props) != kOfxStatOK) return kOfxStatErrBadHandle;
  g_host.props->propSetString(props, kOfxPropLabel, 0, "Latentween Morph");
  g_host.props->propSetString(props, kOfxImageEffectPluginPropGrouping, 0, "Latentween");
  g_host.props->propSetString(props, kOfxPropPluginDescription, 0,
                              "Generates the in-between frames of a transition with a latent diffusion model "
                              "(Wang & Golland 2023), computed by a running latentween daemon.");
  set_strings(props, kOfxImageEffectPropSupportedContexts,
              {kOfxImageEffectContextTransition, kOfxImageEffectContextGeneral});
  set_strings(props, kOfxImageEffectPropSupportedPixelDepths, {kOfxBitDepthFloat, kOfxBitDepthByte});
  g_host.props->propSetInt(props, kOfxImageEffectPropSupportsMultipleClipDepths, 0, 0);
  // Whole frames only: a job needs both complete keyframes, and the cache key hashes all pixels.
  g_host.props->propSetInt(props, kOfxImageEffectPropSupportsTiles, 0, 0);
  g_host.props->propSetInt(props, kOfxImageEffectPluginPropHostFrameThreading, 0, 0);
  // The keyframes are read at the transition's ends, not at the frame being rendered.
  g_host.props->propSetInt(props, kOfxImageEffectPropTemporalClipAccess, 0, 1);
  g_host.props->propSetString(props, kOfxImageEffectPluginRenderThreadSafety, 0, kOfxImageEffectRenderInstanceSafe);
  return kOfxStatOK;
}

OfxStatus define_clip(OfxImageEffectHandle effect, const char* name, bool source) {
  OfxPropertySetHandle props = nullptr;
  if (g_host.effects->clipDefine(effect, name, &props) != kOfxStatOK) return kOfxStatFailed;
  g_host.props->propSetString(props, kOfxImageEffectPropSupportedComponents, 0, kOfxImageComponentRGBA);
  g_host.props->propSetInt(props, kOfxImageEffectPropSupportsTiles, 0, 0);
  if (source) g_host.props->propSetInt(props, kOfxImageEffectPropTemporalClipAccess, 0, 1);
  return kOfxStatOK;
}

OfxPropertySetHandle define_param(OfxParamSetHandle params, const char* type, const char* name, const char* label,
                                  const char* hint) {
  OfxPropertySetHandle props = nullptr;
  if (g_host.params->paramDefine(params, type, name, &props) != kOfxStatOK || !props) return nullptr;
  g_host.props->propSetString(props, kOfxPropLabel, 0, label);
  g_host.props->propSetString(props, kOfxParamPropHint, 0, hint);
  return props;
}

void define_string(OfxParamSetHandle params, const char* name, const char* label, const char* fallback,
                   const char* hint) {
  OfxPropertySetHandle p = define_param(params, kOfxParamTypeString, name, label, hint);
  if (!p) return;
  g_host.props->propSetString(p, kOfxParamPropDefault, 0, fallback);
  g_host.props->propSetString(p, kOfxParamPropStringMode, 0, kOfxParamStringIsSingleLine);
  g_host.props->propSetInt(p, kOfxParamPropAnimates, 0, 0);
}

// Resolve clamps integer parameters to (0, 0) unless both ranges are set, so both always are.
void define_int(OfxParamSetHandle params, const char* name, const char* label, int fallback, int low, int high,
                int display_high, const char* hint) {
  OfxPropertySetHandle p = define_param(params, kOfxParamTypeInteger, name, label, hint);
  if (!p) return;
  g_host.props->propSetInt(p, kOfxParamPropDefault, 0, fallback);
  g_host.props->propSetInt(p, kOfxParamPropMin, 0, low);
  g_host.props->propSetInt(p, kOfxParamPropMax, 0, high);
  g_host.props->propSetInt(p, kOfxParamPropDisplayMin, 0, low);
  g_host.props->propSetInt(p, kOfxParamPropDisplayMax, 0, display_high);
  g_host.props->propSetInt(p, kOfxParamPropAnimates, 0, 0);
}

OfxStatus describe_in_context(OfxImageEffectHandle effect, OfxPropertySetHandle in_args) {
  const std::string context = prop_string(in_args, kOfxImageEffectPropContext);
  const bool transition = context == kOfxImageEffectContextTransition;
  if (!transition && context != kOfxImageEffectContextGeneral) return kOfxStatErrUnsupported;
  if (define_clip(effect, kOfxImageEffectTransitionSourceFromClipName, true) != kOfxStatOK ||
      define_clip(effect, kOfxImageEffectTransitionSourceToClipName, true) != kOfxStatOK ||
      define_clip(effect, kOfxImageEffectOutputClipName, false) != kOfxStatOK)
    return kOfxStatFailed;

  OfxParamSetHandle params = nullptr;
  if (g_host.effects->getParamSet(effect, &params) != kOfxStatOK) return kOfxStatErrBadHandle;
  // The Transition context mandates this parameter and the plug-in declares it (the host sets its
  // value); a host that waited for the declaration would otherwise leave the amount at 0. Elsewhere
  // it is an ordinary parameter the user animates.
  OfxPropertySetHandle p = nullptr;
  if (g_host.params->paramDefine(params, kOfxParamTypeDouble, kOfxImageEffectTransitionParamName, &p) == kOfxStatOK &&
      p && !transition) {
    g_host.props->propSetString(p, kOfxPropLabel, 0, "Transition");
    g_host.props->propSetString(p, kOfxParamPropHint, 0, "0 shows the first input, 1 the second; animate it");
    g_host.props->propSetDouble(p, kOfxParamPropDefault, 0, 0.0);
    g_host.props->propSetDouble(p, kOfxParamPropMin, 0, 0.0);
    g_host.props->propSetDouble(p, kOfxParamPropMax, 0, 1.0);
    g_host.props->propSetDouble(p, kOfxParamPropDisplayMin, 0, 0.0);
    g_host.props->propSetDouble(p, kOfxParamPropDisplayMax, 0, 1.0);
  }
  define_string(params, param::kPrompt, "Prompt", "", "text describing both keyframes");
  define_string(params, param::kNegative, "Negative prompt", "", "what the frames should not show");
  define_int(params, param::kSeed, "Seed", 0, 0, INT_MAX, 100000, "fixes every frame: the same seed gives the same frames");
  define_int(params, param::kFrames, "Frames", 0, 0, kMaxFrames, 240,
             "frames in the morph, both keyframes included; 0: the transition's length in frames, plus one");
  define_int(params, param::kSteps, "Steps", 40, 1, 1000, 200, "sampler steps of the full schedule (a frame runs its noise level's share)");
  define_int(params, param::kCandidates, "Candidates", 0, 0, 64, 16,
             "candidates ranked per new frame; 0: the daemon's default, 1: no ranking");
  OfxPropertySetHandle pose = define_param(params, kOfxParamTypeBoolean, param::kPose, "Pose guidance",
                                           "detect the people's pose and guide the frames with it (OpenPose)");
  if (pose) {
    g_host.props->propSetInt(pose, kOfxParamPropDefault, 0, 0);
    g_host.props->propSetInt(pose, kOfxParamPropAnimates, 0, 0);
  }
  define_string(params, param::kDaemonUrl, "Daemon URL", kDefaultDaemonUrl,
                "where `latentween serve` listens; empty: $LATENTWEEN_SERVER, then http://127.0.0.1:8642");
  define_string(params, param::kToken, "Token", "",
                "the daemon's --token, if it has one; empty: $LATENTWEEN_TOKEN (kept in the project file)");
  return kOfxStatOK;
}

OfxParamHandle param_handle(OfxParamSetHandle params, const char* name) {
  OfxParamHandle handle = nullptr;
  g_host.params->paramGetHandle(params, name, &handle, nullptr);
  return handle;
}

OfxStatus create_instance(OfxImageEffectHandle effect) {
  OfxPropertySetHandle props = nullptr;
  OfxParamSetHandle params = nullptr;
  if (g_host.effects->getPropertySet(effect, &props) != kOfxStatOK ||
      g_host.effects->getParamSet(effect, &params) != kOfxStatOK)
    return kOfxStatErrBadHandle;
  auto* instance = new Instance();
  instance->effect = effect;
  instance->id = g_next_instance++;
  instance->transition_context = prop_string(props, kOfxImageEffectPropContext) == kOfxImageEffectContextTransition;
  g_host.effects->clipGetHandle(effect, kOfxImageEffectTransitionSourceFromClipName, &instance->from, nullptr);
  g_host.effects->clipGetHandle(effect, kOfxImageEffectTransitionSourceToClipName, &instance->to, nullptr);
  g_host.effects->clipGetHandle(effect, kOfxImageEffectOutputClipName, &instance->output, nullptr);
  instance->transition = param_handle(params, kOfxImageEffectTransitionParamName);
  instance->prompt = param_handle(params, param::kPrompt);
  instance->negative = param_handle(params, param::kNegative);
  instance->seed = param_handle(params, param::kSeed);
  instance->frames = param_handle(params, param::kFrames);
  instance->steps = param_handle(params, param::kSteps);
  instance->candidates = param_handle(params, param::kCandidates);
  instance->pose = param_handle(params, param::kPose);
  instance->url = param_handle(params, param::kDaemonUrl);
  instance->token = param_handle(params, param::kToken);
  g_host.props->propSetPointer(props, kOfxPropInstanceData, 0, instance);
  return kOfxStatOK;
}

OfxStatus destroy_instance(OfxImageEffectHandle effect) {
  Instance* instance = instance_of(effect);
  if (!instance) return kOfxStatReplyDefault;
  cancel_owned_jobs(*instance);
  OfxPropertySetHandle props = nullptr;
  if (g_host.effects->getPropertySet(effect, &props) == kOfxStatOK)
    g_host.props->propSetPointer(props, kOfxPropInstanceData, 0, nullptr);
  delete instance;
  return kOfxStatOK;
}

OfxStatus dispatch(const char* action, const void* handle, OfxPropertySetHandle in_args, OfxPropertySetHandle out_args) {
  auto effect = static_cast<OfxImageEffectHandle>(const_cast<void*>(handle));
  if (std::strcmp(action, kOfxActionLoad) == 0) {
    if (!fetch_suites()) return kOfxStatErrMissingHostFeature;
    http_global_init();
    return kOfxStatOK;
  }
  if (std::strcmp(action, kOfxActionUnload) == 0) {
    FrameCache::shared().clear_sequences();
    http_global_cleanup();
    return kOfxStatOK;
  }
  if (std::strcmp(action, kOfxActionDescribe) == 0) return describe(effect);
  if (std::strcmp(action, kOfxImageEffectActionDescribeInContext) == 0) return describe_in_context(effect, in_args);
  if (std::strcmp(action, kOfxActionCreateInstance) == 0) return create_instance(effect);
  if (std::strcmp(action, kOfxActionDestroyInstance) == 0) return destroy_instance(effect);
  if (std::strcmp(action, kOfxImageEffectActionRender) == 0) {
    Instance* instance = instance_of(effect);
    return instance ? render(*instance, in_args) : kOfxStatErrBadHandle;
  }
  if (std::strcmp(action, kOfxImageEffectActionGetFramesNeeded) == 0) {
    Instance* instance = instance_of(effect);
    return instance && out_args ? frames_needed(*instance, in_args, out_args) : kOfxStatReplyDefault;
  }
  if (std::strcmp(action, kOfxActionPurgeCaches) == 0) {
    FrameCache::shared().clear_sequences();
    if (Instance* instance = instance_of(effect)) instance->forget_last();
    return kOfxStatOK;
  }
  return kOfxStatReplyDefault;
}

OfxStatus main_entry(const char* action, const void* handle, OfxPropertySetHandle in_args,
                     OfxPropertySetHandle out_args) {
  if (!action) return kOfxStatErrValue;
  try {
    return dispatch(action, handle, in_args, out_args);
  } catch (const std::bad_alloc&) {
    return kOfxStatErrMemory;
  } catch (...) {
    return kOfxStatErrFatal;
  }
}

void set_host(OfxHost* host) { g_host.host = host; }

OfxPlugin g_plugin = {kOfxImageEffectPluginApi, kOfxImageEffectPluginApiVersion, "org.latentween.Morph", 0, 1,
                      set_host, main_entry};

}  // namespace

Instance* instance_of(OfxImageEffectHandle effect) {
  OfxPropertySetHandle props = nullptr;
  void* data = nullptr;
  if (!effect || g_host.effects->getPropertySet(effect, &props) != kOfxStatOK) return nullptr;
  if (g_host.props->propGetPointer(props, kOfxPropInstanceData, 0, &data) != kOfxStatOK) return nullptr;
  return static_cast<Instance*>(data);
}

}  // namespace latentween

extern "C" {
int OfxGetNumberOfPlugins(void) { return 1; }
OfxPlugin* OfxGetPlugin(int nth) { return nth == 0 ? &latentween::g_plugin : nullptr; }
}
