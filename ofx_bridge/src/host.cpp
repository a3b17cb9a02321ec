#include "host.h"

namespace latentween {

HostSuites g_host;

bool fetch_suites() {
  OfxHost* host = g_host.host;
  if (!host || !host->fetchSuite) return false;
  auto fetch = [host](const char* name, int version) { return host->fetchSuite(host->host, name, version); };
  g_host.props = static_cast<const OfxPropertySuiteV1*>(fetch(kOfxPropertySuite, 1));
  g_host.effects = static_cast<const OfxImageEffectSuiteV1*>(fetch(kOfxImageEffectSuite, 1));
  g_host.params = static_cast<const OfxParameterSuiteV1*>(fetch(kOfxParameterSuite, 1));
  g_host.message2 = static_cast<const OfxMessageSuiteV2*>(fetch(kOfxMessageSuite, 2));
  g_host.message = static_cast<const OfxMessageSuiteV1*>(fetch(kOfxMessageSuite, 1));
  g_host.progress = static_cast<const OfxProgressSuiteV1*>(fetch(kOfxProgressSuite, 1));
  return g_host.props && g_host.effects && g_host.params;
}

std::string prop_string(OfxPropertySetHandle set, const char* name, int index, const std::string& fallback) {
  char* value = nullptr;
  if (!set || g_host.props->propGetString(set, name, index, &value) != kOfxStatOK || !value) return fallback;
  return value;
}

int prop_int(OfxPropertySetHandle set, const char* name, int index, int fallback) {
  int value = fallback;
  if (!set || g_host.props->propGetInt(set, name, index, &value) != kOfxStatOK) return fallback;
  return value;
}

double prop_double(OfxPropertySetHandle set, const char* name, int index, double fallback) {
  double value = fallback;
  if (!set || g_host.props->propGetDouble(set, name, index, &value) != kOfxStatOK) return fallback;
  return value;
}

bool prop_has(OfxPropertySetHandle set, const char* name) {
  int count = 0;
  return set && g_host.props->propGetDimension(set, name, &count) == kOfxStatOK && count > 0;
}

void post_warning(OfxImageEffectHandle effect, const std::string& text) {
  const std::string line = "Latentween: " + text;
  if (g_host.message2 && g_host.message2->setPersistentMessage) {
    g_host.message2->setPersistentMessage(effect, kOfxMessageWarning, "latentween.warning", "%s", line.c_str());
  } else if (g_host.message && g_host.message->message) {
    g_host.message->message(effect, kOfxMessageWarning, "latentween.warning", "%s", line.c_str());
  }
}

void clear_warning(OfxImageEffectHandle effect) {
  if (g_host.message2 && g_host.message2->setPersistentMessage && g_host.message2->clearPersistentMessage)
    g_host.message2->clearPersistentMessage(effect);
}

}  // namespace latentween
