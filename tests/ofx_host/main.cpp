// ofx_test_host SCRIPT: loads an OpenFX plug-in and drives it as a host would, one command a line,
// printing one JSON line per event on stdout. Images are raw RGBA files, rows top to bottom,
// uint8 or float32 samples. Commands:
//
//   load BINARY                        dlopen, OfxGetPlugin(0), setHost, Load
//   describe                           Describe; prints the descriptor's properties
//   describe_in_context CONTEXT        transition|general; prints clips and parameters
//   create CONTEXT DEPTH W H DURATION  byte|float images of W x H, a transition DURATION frames long
//   source CLIP FILE                   the image every time of SourceFrom or SourceTo shows
//   set PARAM VALUE                    the rest of the line is the value
//   thumbnail 0|1                      Resolve's thumbnail flag on every clip
//   render_scale S                     the render scale of the next renders
//   abort_after N                      abort() answers 1 from its Nth call in a render on; 0: never
//   abort_after_ms N                   abort() answers 1 once a render has run N ms; 0: never
//   persistent 0|1                     before load: offer persistent messages (as Resolve does not)
//   host_transition 0|1                before create: add a Transition parameter if the plug-in
//                                      declared none (default 1)
//   strict_frames 0|1                  ask GetFramesNeeded before each render and refuse input
//                                      frames outside what it answered
//   moving 0|1                         inputs change with time (their first sample holds it)
//   render TIME TRANSITION OUTFILE     Render; writes the output image
//   concurrent N TIME TRANSITION PREFIX  N instances with the same settings render at once on
//                                      N threads; writes PREFIX0.raw ...; the extra ones are destroyed
//   purge_while_rendering N TIME TRANSITION OUTFILE  N renders while another thread keeps sending
//                                      PurgeCaches to the same instance
//   sleep MS
//   destroy | unload
#include <dlfcn.h>

#include <atomic>
#include <cmath>
#include <fstream>
#include <iostream>
#include <sstream>
#include <thread>

#include "host.h"

using namespace ofxtest;

namespace {

struct Session {
  void* library = nullptr;
  OfxPlugin* plugin = nullptr;
  std::unique_ptr<Effect> descriptor;
  std::map<std::string, std::unique_ptr<Effect>> contexts;
  std::unique_ptr<Effect> instance;
  Picture from, to, output;
  bool thumbnail = false;
  bool host_transition = true;
  double render_scale = 1.0;
  std::string context, depth;
  double duration = 0;
};

std::string pixel_depth(const std::string& depth) { return depth == "float" ? kOfxBitDepthFloat : kOfxBitDepthByte; }

OfxStatus call(Session& s, const char* action, void* handle, PropertySet* in_args = nullptr) {
  OfxStatus status = s.plugin->mainEntry(action, handle, reinterpret_cast<OfxPropertySetHandle>(in_args), nullptr);
  emit("action", "\"action\":" + quote(action) + ",\"status\":" + std::to_string(status));
  return status;
}

bool read_picture(const std::string& path, Picture& picture) {
  std::ifstream file(path, std::ios::binary);
  std::vector<unsigned char> data((std::istreambuf_iterator<char>(file)), std::istreambuf_iterator<char>());
  size_t expected = static_cast<size_t>(picture.width) * picture.height * (picture.is_float ? 16 : 4);
  if (data.size() != expected) return false;
  picture.top_down = std::move(data);
  return true;
}

void write_picture(const std::string& path, const Picture& picture) {
  std::ofstream file(path, std::ios::binary);
  file.write(reinterpret_cast<const char*>(picture.top_down.data()), static_cast<std::streamsize>(picture.top_down.size()));
}

std::string describe_context(const Effect& effect) {
  std::string clips = "{", params = "{";
  for (const auto& name : effect.clip_order) {
    if (clips.size() > 1) clips += ",";
    clips += quote(name) + ":" + effect.clips.at(name)->props.to_json();
  }
  for (const auto& name : effect.params.order) {
    if (params.size() > 1) params += ",";
    params += quote(name) + ":" + effect.params.params.at(name)->props.to_json();
  }
  return "\"clips\":" + clips + "},\"params\":" + params + "}";
}

// An instance's parameters start from the descriptor's defaults.
void instantiate(const Effect& context, Effect& instance) {
  for (const auto& name : context.params.order) {
    const Param& defined = *context.params.params.at(name);
    auto param = std::make_unique<Param>(defined);
    auto it = defined.props.props.find(kOfxParamPropDefault);
    if (it != defined.props.props.end()) {
      const Property& d = it->second;
      if (d.type == 's' && !d.strings.empty()) param->string_value = d.strings[0];
      if (d.type == 'i' && !d.ints.empty()) param->int_value = d.ints[0];
      if (d.type == 'd' && !d.doubles.empty()) param->double_value = d.doubles[0];
    }
    instance.params.params[name] = std::move(param);
    instance.params.order.push_back(name);
  }
  for (const auto& name : context.clip_order) {
    instance.clips[name] = std::make_unique<Clip>(*context.clips.at(name));
    instance.clip_order.push_back(name);
  }
}

std::unique_ptr<Effect> make_instance(Session& s, Picture* output) {
  auto it = s.contexts.find(s.context);
  if (it == s.contexts.end()) return nullptr;
  auto instance = std::make_unique<Effect>();
  Effect& e = *instance;
  e.props = s.descriptor->props;
  e.props.set_string(kOfxPropType, "OfxTypeImageEffectInstance");
  e.props.set_string(kOfxImageEffectPropContext, it->second->props.get_string(kOfxImageEffectPropContext));
  e.props.set_double(kOfxImageEffectInstancePropEffectDuration, s.duration);
  e.params.owner_props = &e.props;
  instantiate(*it->second, e);
  const bool declared = e.params.params.count(kOfxImageEffectTransitionParamName) > 0;
  if (s.context == kOfxImageEffectContextTransition && !declared && s.host_transition) {
    auto transition = std::make_unique<Param>();
    transition->name = kOfxImageEffectTransitionParamName;
    transition->type = kOfxParamTypeDouble;
    transition->props.set_string(kOfxPropName, transition->name);
    transition->props.set_string(kOfxParamPropType, transition->type);
    e.params.params[transition->name] = std::move(transition);
    e.params.order.push_back(kOfxImageEffectTransitionParamName);
  }
  for (auto& [name, clip] : e.clips) {
    clip->picture = name == kOfxImageEffectOutputClipName ? output
                    : name == kOfxImageEffectTransitionSourceFromClipName ? &s.from : &s.to;
    clip->props.set_string(kOfxImageEffectPropPixelDepth, pixel_depth(s.depth));
    clip->props.set_string(kOfxImageEffectPropComponents, kOfxImageComponentRGBA);
    clip->props.set_double(kOfxImageEffectPropFrameRange, 0.0, 0);
    clip->props.set_double(kOfxImageEffectPropFrameRange, s.duration - 1.0, 1);
  }
  if (call(s, kOfxActionCreateInstance, &e) != kOfxStatOK) return nullptr;
  return instance;
}

bool create(Session& s, const std::string& context_name, const std::string& depth, int width, int height,
            double duration) {
  s.context = context_name;
  s.depth = depth;
  s.duration = duration;
  for (Picture* p : {&s.from, &s.to, &s.output}) {
    p->width = width;
    p->height = height;
    p->is_float = depth == "float";
  }
  s.output.top_down.assign(static_cast<size_t>(width) * height * (s.output.is_float ? 16 : 4), 0);
  s.instance = make_instance(s, &s.output);
  return s.instance != nullptr;
}

void set_param(Effect& effect, const std::string& name, const std::string& value) {
  auto it = effect.params.params.find(name);
  if (it == effect.params.params.end()) {
    emit("error", "\"text\":" + quote("no parameter " + name));
    return;
  }
  Param& p = *it->second;
  if (p.type == kOfxParamTypeString) p.string_value = value;
  else if (p.type == kOfxParamTypeDouble) p.double_value = std::stod(value);
  else p.int_value = std::stoi(value);
}

// What a strict host does before a render: ask which input frames the plug-in needs (default: the
// render time) and fetch no others.
void ask_frames_needed(Session& s, Effect& effect, double time) {
  PropertySet args, needed;
  args.set_double(kOfxPropTime, time);
  for (auto& [name, clip] : effect.clips) {
    if (name == kOfxImageEffectOutputClipName) continue;
    needed.set_double("OfxImageClipPropFrameRange_" + name, time, 0);
    needed.set_double("OfxImageClipPropFrameRange_" + name, time, 1);
  }
  OfxStatus status = s.plugin->mainEntry(kOfxImageEffectActionGetFramesNeeded, &effect,
                                         reinterpret_cast<OfxPropertySetHandle>(&args),
                                         reinterpret_cast<OfxPropertySetHandle>(&needed));
  for (auto& [name, clip] : effect.clips) {
    if (name == kOfxImageEffectOutputClipName) continue;
    clip->allowed = {time, time};
    auto it = needed.props.find("OfxImageClipPropFrameRange_" + name);
    if (status == kOfxStatOK && it != needed.props.end()) clip->allowed = it->second.doubles;
  }
  emit("frames_needed", "\"time\":" + std::to_string(time) + ",\"status\":" + std::to_string(status) +
                            ",\"ranges\":" + needed.to_json());
}

void render_one(Session& s, Effect& effect, Picture& output, double time, double transition,
                const std::string& out_path) {
  if (effect.params.params.count(kOfxImageEffectTransitionParamName))
    set_param(effect, kOfxImageEffectTransitionParamName, std::to_string(transition));
  for (auto& [name, clip] : effect.clips) {
    if (s.thumbnail) clip->props.set_int(kOfxImageClipPropThumbnail, 1);
    else clip->props.props.erase(kOfxImageClipPropThumbnail);
  }
  if (g_state.strict_frames) ask_frames_needed(s, effect, time);
  std::fill(output.top_down.begin(), output.top_down.end(), 0);
  PropertySet args;
  args.set_double(kOfxPropTime, time);
  int window[4] = {0, 0, output.width, output.height};
  for (int i = 0; i < 4; ++i) args.set_int(kOfxImageEffectPropRenderWindow, window[i], i);
  args.set_double(kOfxImageEffectPropRenderScale, s.render_scale, 0);
  args.set_double(kOfxImageEffectPropRenderScale, s.render_scale, 1);
  const auto start = std::chrono::steady_clock::now();
  OfxStatus status = call(s, kOfxImageEffectActionRender, &effect, &args);
  const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - start);
  write_picture(out_path, output);
  emit("render", "\"time\":" + std::to_string(time) + ",\"transition\":" + std::to_string(transition) +
                     ",\"status\":" + std::to_string(status) + ",\"abort_calls\":" +
                     std::to_string(g_state.abort_calls.load()) + ",\"live_images\":" +
                     std::to_string(g_state.live()) + ",\"ms\":" + std::to_string(ms.count()));
}

void start_render_clock() {
  g_state.abort_calls = 0;
  g_state.render_start = std::chrono::steady_clock::now();
}

void render(Session& s, double time, double transition, const std::string& out_path) {
  start_render_clock();
  render_one(s, *s.instance, s.output, time, transition, out_path);
}

// Several instances with this one's settings, as a host rendering a transition on many threads.
void concurrent(Session& s, int count, double time, double transition, const std::string& prefix) {
  std::vector<Picture> outputs(static_cast<size_t>(count), s.output);
  std::vector<std::unique_ptr<Effect>> extra;
  std::vector<Effect*> effects{s.instance.get()};
  for (int k = 1; k < count; ++k) {
    extra.push_back(make_instance(s, &outputs[static_cast<size_t>(k)]));
    for (const auto& [name, param] : s.instance->params.params) {
      auto it = extra.back()->params.params.find(name);
      if (it == extra.back()->params.params.end()) continue;
      it->second->int_value = param->int_value;
      it->second->double_value = param->double_value;
      it->second->string_value = param->string_value;
    }
    effects.push_back(extra.back().get());
  }
  start_render_clock();
  std::vector<std::thread> threads;
  for (int k = 0; k < count; ++k) {
    Picture& out = k == 0 ? s.output : outputs[static_cast<size_t>(k)];
    threads.emplace_back([&s, &out, effect = effects[static_cast<size_t>(k)], time, transition, k, prefix] {
      render_one(s, *effect, out, time, transition, prefix + std::to_string(k) + ".raw");
    });
  }
  for (auto& thread : threads) thread.join();
  for (auto& effect : extra) call(s, kOfxActionDestroyInstance, effect.get());
}

void purge_while_rendering(Session& s, int count, double time, double transition, const std::string& out_path) {
  std::atomic<bool> done{false};
  std::atomic<int> purges{0};
  Effect* effect = s.instance.get();
  std::thread purger([&] {
    while (!done) {
      s.plugin->mainEntry(kOfxActionPurgeCaches, effect, nullptr, nullptr);
      ++purges;
      std::this_thread::yield();
    }
  });
  for (int k = 0; k < count; ++k) render(s, time, transition, out_path);
  done = true;
  purger.join();
  emit("purged", "\"count\":" + std::to_string(purges.load()));
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::cerr << "usage: ofx_test_host SCRIPT\n";
    return 2;
  }
  std::ifstream script(argv[1]);
  Session s;
  std::string line;
  while (std::getline(script, line)) {
    std::istringstream words(line);
    std::string command;
    if (!(words >> command) || command[0] == '#') continue;
    if (command == "load") {
      std::string path;
      words >> path;
      s.library = dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL);
      if (!s.library) {
        emit("error", "\"text\":" + quote(dlerror()));
        return 1;
      }
      auto count = reinterpret_cast<int (*)()>(dlsym(s.library, "OfxGetNumberOfPlugins"));
      auto get = reinterpret_cast<OfxPlugin* (*)(int)>(dlsym(s.library, "OfxGetPlugin"));
      if (!count || !get || count() < 1 || !(s.plugin = get(0))) {
        emit("error", "\"text\":\"no OpenFX entry points\"");
        return 1;
      }
      emit("loaded", "\"plugins\":" + std::to_string(count()) + ",\"api\":" + quote(s.plugin->pluginApi) +
                         ",\"api_version\":" + std::to_string(s.plugin->apiVersion) +
                         ",\"id\":" + quote(s.plugin->pluginIdentifier) +
                         ",\"version\":[" + std::to_string(s.plugin->pluginVersionMajor) + "," +
                         std::to_string(s.plugin->pluginVersionMinor) + "]");
      s.plugin->setHost(make_host());
      if (call(s, kOfxActionLoad, nullptr) != kOfxStatOK) return 1;
    } else if (command == "describe") {
      s.descriptor = std::make_unique<Effect>();
      s.descriptor->props.set_string(kOfxPropType, "OfxTypeImageEffect");
      s.descriptor->params.owner_props = &s.descriptor->props;
      call(s, kOfxActionDescribe, s.descriptor.get());
      emit("described", "\"props\":" + s.descriptor->props.to_json());
    } else if (command == "describe_in_context") {
      std::string name;
      words >> name;
      std::string context = name == "general" ? kOfxImageEffectContextGeneral : kOfxImageEffectContextTransition;
      auto effect = std::make_unique<Effect>();
      effect->props = s.descriptor->props;
      effect->props.set_string(kOfxImageEffectPropContext, context);
      effect->params.owner_props = &effect->props;
      PropertySet args;
      args.set_string(kOfxImageEffectPropContext, context);
      OfxStatus status = call(s, kOfxImageEffectActionDescribeInContext, effect.get(), &args);
      emit("described_in_context", "\"context\":" + quote(context) + ",\"status\":" + std::to_string(status) + "," +
                                       describe_context(*effect));
      s.contexts[context] = std::move(effect);
    } else if (command == "create") {
      std::string name, depth;
      int width = 0, height = 0;
      double duration = 0;
      words >> name >> depth >> width >> height >> duration;
      std::string context = name == "general" ? kOfxImageEffectContextGeneral : kOfxImageEffectContextTransition;
      if (!create(s, context, depth, width, height, duration)) return 1;
    } else if (command == "source") {
      std::string clip, path;
      words >> clip >> path;
      if (!read_picture(path, clip == kOfxImageEffectTransitionSourceFromClipName ? s.from : s.to)) {
        emit("error", "\"text\":" + quote("bad image file " + path));
        return 1;
      }
    } else if (command == "set") {
      std::string name, value;
      words >> name;
      std::getline(words >> std::ws, value);
      set_param(*s.instance, name, value);
    } else if (command == "thumbnail") {
      words >> s.thumbnail;
    } else if (command == "render_scale") {
      words >> s.render_scale;
    } else if (command == "abort_after") {
      words >> g_state.abort_after;
    } else if (command == "abort_after_ms") {
      words >> g_state.abort_after_ms;
    } else if (command == "host_transition") {
      words >> s.host_transition;
    } else if (command == "strict_frames") {
      words >> g_state.strict_frames;
    } else if (command == "moving") {
      words >> g_state.moving;
    } else if (command == "concurrent" || command == "purge_while_rendering") {
      int count = 0;
      double time = 0, transition = 0;
      std::string out;
      words >> count >> time >> transition >> out;
      if (command == "concurrent") concurrent(s, count, time, transition, out);
      else purge_while_rendering(s, count, time, transition, out);
    } else if (command == "sleep") {
      int ms = 0;
      words >> ms;
      std::this_thread::sleep_for(std::chrono::milliseconds(ms));
    } else if (command == "persistent") {
      words >> g_state.persistent_messages;
    } else if (command == "render") {
      double time = 0, transition = 0;
      std::string out;
      words >> time >> transition >> out;
      render(s, time, transition, out);
    } else if (command == "destroy") {
      call(s, kOfxActionDestroyInstance, s.instance.get());
      s.instance.reset();
    } else if (command == "unload") {
      call(s, kOfxActionUnload, nullptr);
      emit("unloaded", "\"live_images\":" + std::to_string(g_state.live()) +
                           ",\"problems\":[" + [] {
                             std::string list;
                             for (const auto& p : g_state.problems) list += (list.empty() ? "" : ",") + quote(p);
                             return list;
                           }() + "]");
    } else {
      emit("error", "\"text\":" + quote("unknown command " + command));
      return 1;
    }
  }
  return 0;
}
