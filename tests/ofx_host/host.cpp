// The image effect, parameter, message and progress suites, and the host handle that offers them.
#include "host.h"

#include <cstdarg>
#include <cstdio>
#include <cstring>

namespace ofxtest {

HostState g_state;

namespace {

// -- image effects -------------------------------------------------------------------------------

Effect* effect_of(OfxImageEffectHandle handle) { return reinterpret_cast<Effect*>(handle); }

OfxStatus get_property_set(OfxImageEffectHandle e, OfxPropertySetHandle* out) {
  if (!e) return kOfxStatErrBadHandle;
  *out = reinterpret_cast<OfxPropertySetHandle>(&effect_of(e)->props);
  return kOfxStatOK;
}
OfxStatus get_param_set(OfxImageEffectHandle e, OfxParamSetHandle* out) {
  if (!e) return kOfxStatErrBadHandle;
  *out = reinterpret_cast<OfxParamSetHandle>(&effect_of(e)->params);
  return kOfxStatOK;
}
OfxStatus clip_define(OfxImageEffectHandle e, const char* name, OfxPropertySetHandle* out) {
  if (!e || !name) return kOfxStatErrBadHandle;
  Effect* effect = effect_of(e);
  auto& clip = effect->clips[name];
  if (!clip) {
    clip = std::make_unique<Clip>();
    clip->name = name;
    clip->props.set_string(kOfxPropName, name);
    effect->clip_order.push_back(name);
  }
  *out = reinterpret_cast<OfxPropertySetHandle>(&clip->props);
  return kOfxStatOK;
}
OfxStatus clip_get_handle(OfxImageEffectHandle e, const char* name, OfxImageClipHandle* clip,
                          OfxPropertySetHandle* props) {
  if (!e || !name) return kOfxStatErrBadHandle;
  auto it = effect_of(e)->clips.find(name);
  if (it == effect_of(e)->clips.end()) return kOfxStatErrUnknown;
  *clip = reinterpret_cast<OfxImageClipHandle>(it->second.get());
  if (props) *props = reinterpret_cast<OfxPropertySetHandle>(&it->second->props);
  return kOfxStatOK;
}
OfxStatus clip_get_property_set(OfxImageClipHandle c, OfxPropertySetHandle* out) {
  if (!c) return kOfxStatErrBadHandle;
  *out = reinterpret_cast<OfxPropertySetHandle>(&reinterpret_cast<Clip*>(c)->props);
  return kOfxStatOK;
}
bool allowed(const Clip& clip, OfxTime time) {
  if (!g_state.strict_frames || clip.name == kOfxImageEffectOutputClipName) return true;
  for (size_t i = 0; i + 1 < clip.allowed.size(); i += 2) {
    if (clip.allowed[i] <= time && time <= clip.allowed[i + 1]) return true;
  }
  return false;
}
OfxStatus clip_get_image(OfxImageClipHandle c, OfxTime time, const OfxRectD*, OfxPropertySetHandle* out) {
  Clip* clip = reinterpret_cast<Clip*>(c);
  if (!clip) return kOfxStatErrBadHandle;
  Picture* picture = clip->picture;
  if (!picture || picture->width <= 0) return kOfxStatFailed;  // unconnected: black and transparent
  if (!allowed(*clip, time)) return kOfxStatFailed;  // as a host that fetches only declared frames
  auto* image = new Image();
  const size_t row = static_cast<size_t>(picture->width) * (picture->is_float ? 16 : 4);
  image->bottom_up.resize(row * static_cast<size_t>(picture->height));
  for (int y = 0; y < picture->height; ++y)  // OFX rows run bottom up
    std::memcpy(&image->bottom_up[row * static_cast<size_t>(y)],
                &picture->top_down[row * static_cast<size_t>(picture->height - 1 - y)], row);
  image->props.set_pointer(kOfxImagePropData, image->bottom_up.data());
  int bounds[4] = {0, 0, picture->width, picture->height};
  for (int i = 0; i < 4; ++i) image->props.set_int(kOfxImagePropBounds, bounds[i], i);
  image->props.set_int(kOfxImagePropRowBytes, static_cast<int>(row));
  image->props.set_string(kOfxImageEffectPropPixelDepth, picture->is_float ? kOfxBitDepthFloat : kOfxBitDepthByte);
  image->props.set_string(kOfxImageEffectPropComponents, kOfxImageComponentRGBA);
  image->props.set_string(kOfxImageEffectPropPreMultiplication, "OfxImageOpaque");
  if (clip->name == kOfxImageEffectOutputClipName) image->output = picture;
  if (g_state.moving && clip->name != kOfxImageEffectOutputClipName) {
    // the first row of OFX data is the bottom row; its first sample tells the time
    if (picture->is_float) {
      const float value = static_cast<float>(time) / 100.0f;
      std::memcpy(image->bottom_up.data(), &value, sizeof value);
    } else {
      image->bottom_up[0] = static_cast<unsigned char>(time);
    }
  }
  {
    std::lock_guard<std::mutex> lock(g_state.mutex);
    g_state.live_images.insert(image);
  }
  *out = reinterpret_cast<OfxPropertySetHandle>(&image->props);
  return kOfxStatOK;
}
OfxStatus clip_release_image(OfxPropertySetHandle handle) {
  auto* image = reinterpret_cast<Image*>(handle);
  {
    std::lock_guard<std::mutex> lock(g_state.mutex);
    if (!g_state.live_images.erase(image)) return kOfxStatErrBadHandle;
  }
  if (Picture* picture = image->output) {
    const size_t row = static_cast<size_t>(picture->width) * (picture->is_float ? 16 : 4);
    for (int y = 0; y < picture->height; ++y)
      std::memcpy(&picture->top_down[row * static_cast<size_t>(picture->height - 1 - y)],
                  &image->bottom_up[row * static_cast<size_t>(y)], row);
  }
  delete image;
  return kOfxStatOK;
}
OfxStatus clip_get_rod(OfxImageClipHandle c, OfxTime, OfxRectD* rod) {
  Clip* clip = reinterpret_cast<Clip*>(c);
  if (!clip || !clip->picture) return kOfxStatFailed;
  *rod = OfxRectD{0.0, 0.0, static_cast<double>(clip->picture->width), static_cast<double>(clip->picture->height)};
  return kOfxStatOK;
}
int abort_render(OfxImageEffectHandle) {
  const int calls = ++g_state.abort_calls;
  if (g_state.abort_after > 0 && calls >= g_state.abort_after) return 1;
  return g_state.abort_after_ms > 0 &&
         std::chrono::steady_clock::now() - g_state.render_start >= std::chrono::milliseconds(g_state.abort_after_ms);
}
OfxStatus memory_alloc(OfxImageEffectHandle, size_t, OfxImageMemoryHandle*) { return kOfxStatErrUnsupported; }
OfxStatus memory_free(OfxImageMemoryHandle) { return kOfxStatErrUnsupported; }
OfxStatus memory_lock(OfxImageMemoryHandle, void**) { return kOfxStatErrUnsupported; }
OfxStatus memory_unlock(OfxImageMemoryHandle) { return kOfxStatErrUnsupported; }

const OfxImageEffectSuiteV1 kImageEffectSuite = {
    get_property_set, get_param_set, clip_define, clip_get_handle, clip_get_property_set, clip_get_image,
    clip_release_image, clip_get_rod, abort_render, memory_alloc, memory_free, memory_lock, memory_unlock};

// -- parameters ----------------------------------------------------------------------------------

ParamSet* params_of(OfxParamSetHandle handle) { return reinterpret_cast<ParamSet*>(handle); }

OfxStatus param_define(OfxParamSetHandle set, const char* type, const char* name, OfxPropertySetHandle* out) {
  if (!set || !type || !name) return kOfxStatErrBadHandle;
  auto& slot = params_of(set)->params[name];
  if (slot) return kOfxStatErrExists;
  slot = std::make_unique<Param>();
  slot->name = name;
  slot->type = type;
  slot->props.set_string(kOfxPropName, name);
  slot->props.set_string(kOfxParamPropType, type);
  params_of(set)->order.push_back(name);
  if (out) *out = reinterpret_cast<OfxPropertySetHandle>(&slot->props);
  return kOfxStatOK;
}
OfxStatus param_get_handle(OfxParamSetHandle set, const char* name, OfxParamHandle* param, OfxPropertySetHandle* out) {
  if (!set || !name) return kOfxStatErrBadHandle;
  auto it = params_of(set)->params.find(name);
  if (it == params_of(set)->params.end()) return kOfxStatErrUnknown;
  *param = reinterpret_cast<OfxParamHandle>(it->second.get());
  if (out) *out = reinterpret_cast<OfxPropertySetHandle>(&it->second->props);
  return kOfxStatOK;
}
OfxStatus param_set_props(OfxParamSetHandle set, OfxPropertySetHandle* out) {
  if (!set) return kOfxStatErrBadHandle;
  *out = reinterpret_cast<OfxPropertySetHandle>(params_of(set)->owner_props);
  return kOfxStatOK;
}
OfxStatus param_props(OfxParamHandle p, OfxPropertySetHandle* out) {
  if (!p) return kOfxStatErrBadHandle;
  *out = reinterpret_cast<OfxPropertySetHandle>(&reinterpret_cast<Param*>(p)->props);
  return kOfxStatOK;
}
// Parameters do not animate here: a value at a time is the value.
OfxStatus read_value(Param* p, va_list args) {
  if (p->type == kOfxParamTypeDouble) {
    *va_arg(args, double*) = p->double_value;
  } else if (p->type == kOfxParamTypeString) {
    *va_arg(args, const char**) = p->string_value.c_str();
  } else {
    *va_arg(args, int*) = p->int_value;
  }
  return kOfxStatOK;
}
OfxStatus param_get_value(OfxParamHandle p, ...) {
  if (!p) return kOfxStatErrBadHandle;
  va_list args;
  va_start(args, p);
  OfxStatus s = read_value(reinterpret_cast<Param*>(p), args);
  va_end(args);
  return s;
}
OfxStatus param_get_value_at_time(OfxParamHandle p, OfxTime time, ...) {
  if (!p) return kOfxStatErrBadHandle;
  va_list args;
  va_start(args, time);
  OfxStatus s = read_value(reinterpret_cast<Param*>(p), args);
  va_end(args);
  return s;
}
OfxStatus unsupported_time(OfxParamHandle, OfxTime, ...) { return kOfxStatErrUnsupported; }
OfxStatus unsupported_range(OfxParamHandle, OfxTime, OfxTime, ...) { return kOfxStatErrUnsupported; }
OfxStatus unsupported_set(OfxParamHandle, ...) { return kOfxStatErrUnsupported; }
OfxStatus unsupported_keys(OfxParamHandle, unsigned int*) { return kOfxStatErrUnsupported; }
OfxStatus unsupported_key_time(OfxParamHandle, unsigned int, OfxTime*) { return kOfxStatErrUnsupported; }
OfxStatus unsupported_key_index(OfxParamHandle, OfxTime, int, int*) { return kOfxStatErrUnsupported; }
OfxStatus unsupported_delete(OfxParamHandle, OfxTime) { return kOfxStatErrUnsupported; }
OfxStatus unsupported_delete_all(OfxParamHandle) { return kOfxStatErrUnsupported; }
OfxStatus unsupported_copy(OfxParamHandle, OfxParamHandle, OfxTime, const OfxRangeD*) { return kOfxStatErrUnsupported; }
OfxStatus edit_begin(OfxParamSetHandle, const char*) { return kOfxStatOK; }
OfxStatus edit_end(OfxParamSetHandle) { return kOfxStatOK; }

const OfxParameterSuiteV1 kParameterSuite = {
    param_define, param_get_handle, param_set_props, param_props, param_get_value, param_get_value_at_time,
    unsupported_time, unsupported_range, unsupported_set, unsupported_time, unsupported_keys,
    unsupported_key_time, unsupported_key_index, unsupported_delete, unsupported_delete_all, unsupported_copy,
    edit_begin, edit_end};

// -- messages and progress -----------------------------------------------------------------------

std::string format(const char* fmt, va_list args) {
  char text[4096];
  std::vsnprintf(text, sizeof text, fmt ? fmt : "", args);
  return text;
}
OfxStatus message(void*, const char* type, const char*, const char* fmt, ...) {
  va_list args;
  va_start(args, fmt);
  std::string text = format(fmt, args);
  va_end(args);
  emit("message", "\"kind\":\"transient\",\"type\":" + quote(type ? type : "") + ",\"text\":" + quote(text));
  return kOfxStatOK;
}
OfxStatus persistent_message(void*, const char* type, const char*, const char* fmt, ...) {
  va_list args;
  va_start(args, fmt);
  std::string text = format(fmt, args);
  va_end(args);
  emit("message", "\"kind\":\"persistent\",\"type\":" + quote(type ? type : "") + ",\"text\":" + quote(text));
  return kOfxStatOK;
}
OfxStatus clear_message(void*) {
  emit("message", "\"kind\":\"clear\"");
  return kOfxStatOK;
}
const OfxMessageSuiteV2 kMessageSuite = {message, persistent_message, clear_message};
const OfxMessageSuiteV2 kMessageSuiteNoPersistent = {message, nullptr, nullptr};

OfxStatus progress_start(void*, const char* label) {
  emit("progress", "\"call\":\"start\",\"label\":" + quote(label ? label : ""));
  return kOfxStatOK;
}
OfxStatus progress_update(void*, double value) {
  emit("progress", "\"call\":\"update\",\"value\":" + std::to_string(value));
  return kOfxStatOK;
}
OfxStatus progress_end(void*) {
  emit("progress", "\"call\":\"end\"");
  return kOfxStatOK;
}
const OfxProgressSuiteV1 kProgressSuite = {progress_start, progress_update, progress_end};

// -- the host ------------------------------------------------------------------------------------

PropertySet g_host_props;

const void* fetch_suite(OfxPropertySetHandle, const char* name, int version) {
  std::string suite = name ? name : "";
  if (suite == kOfxPropertySuite && version == 1) return property_suite();
  if (suite == kOfxImageEffectSuite && version == 1) return &kImageEffectSuite;
  if (suite == kOfxParameterSuite && version == 1) return &kParameterSuite;
  if (suite == kOfxMessageSuite && (version == 1 || version == 2))
    return g_state.persistent_messages ? &kMessageSuite : &kMessageSuiteNoPersistent;
  if (suite == kOfxProgressSuite && version == 1) return &kProgressSuite;
  return nullptr;
}

}  // namespace

OfxHost* make_host() {
  static OfxHost host;
  g_host_props.set_string(kOfxPropName, "org.latentween.TestHost");
  g_host_props.set_string(kOfxPropLabel, "latentween test host");
  host.host = reinterpret_cast<OfxPropertySetHandle>(&g_host_props);
  host.fetchSuite = fetch_suite;
  return &host;
}

}  // namespace ofxtest
