// The ABI pinned at build time. include/ofx_minimal.h is our own declaration of the OpenFX API, and
// the test host in tests/ofx_host shares it, so a drift there (a string mistyped, two suite members
// swapped, a member added) would pass every test and break in real hosts. These values were read from
// the official headers (github.com/AcademySoftwareFoundation/openfx, include/ofxCore.h,
// ofxProperty.h, ofxImageEffect.h, ofxParam.h, ofxMessage.h, ofxProgress.h) and are written out here
// independently of our header: any difference stops the build. This file compiles to nothing.
#include <cstddef>
#include <type_traits>

#include "ofx_minimal.h"

namespace {

constexpr bool same(const char* a, const char* b) {
  while (*a && *a == *b) ++a, ++b;
  return *a == *b;
}

constexpr size_t P = sizeof(void*);  // every suite member is a function pointer

// -- types and structs (ofxCore.h) -------------------------------------------------------------------
static_assert(std::is_same<OfxStatus, int>::value, "OfxStatus");
static_assert(std::is_same<OfxTime, double>::value, "OfxTime");
static_assert(sizeof(OfxPropertySetHandle) == P && sizeof(OfxImageEffectHandle) == P &&
                  sizeof(OfxImageClipHandle) == P && sizeof(OfxParamHandle) == P && sizeof(OfxParamSetHandle) == P &&
                  sizeof(OfxImageMemoryHandle) == P,
              "handles are pointers");

static_assert(std::is_same<OfxPluginEntryPoint, OfxStatus(const char*, const void*, OfxPropertySetHandle,
                                                          OfxPropertySetHandle)>::value,
              "OfxPluginEntryPoint");
static_assert(offsetof(OfxHost, host) == 0 && offsetof(OfxHost, fetchSuite) == P && sizeof(OfxHost) == 2 * P, "OfxHost");
static_assert(std::is_same<decltype(OfxHost::fetchSuite),
                           const void* (*)(OfxPropertySetHandle, const char*, int)>::value,
              "OfxHost::fetchSuite");

// const char*, int, const char*, unsigned, unsigned, two function pointers: the int is padded to a
// pointer's alignment, the two unsigned ints share one 8-byte slot before the pointers.
static_assert(offsetof(OfxPlugin, pluginApi) == 0, "OfxPlugin::pluginApi");
static_assert(offsetof(OfxPlugin, apiVersion) == P, "OfxPlugin::apiVersion");
static_assert(offsetof(OfxPlugin, pluginIdentifier) == 2 * P, "OfxPlugin::pluginIdentifier");
static_assert(offsetof(OfxPlugin, pluginVersionMajor) == 3 * P, "OfxPlugin::pluginVersionMajor");
static_assert(offsetof(OfxPlugin, pluginVersionMinor) == 3 * P + 4, "OfxPlugin::pluginVersionMinor");
static_assert(offsetof(OfxPlugin, setHost) == 3 * P + 8, "OfxPlugin::setHost");
static_assert(offsetof(OfxPlugin, mainEntry) == 4 * P + 8, "OfxPlugin::mainEntry");
static_assert(sizeof(OfxPlugin) == 5 * P + 8, "OfxPlugin");
static_assert(std::is_same<decltype(OfxPlugin::apiVersion), int>::value &&
                  std::is_same<decltype(OfxPlugin::pluginVersionMajor), unsigned int>::value &&
                  std::is_same<decltype(OfxPlugin::pluginVersionMinor), unsigned int>::value &&
                  std::is_same<decltype(OfxPlugin::setHost), void (*)(OfxHost*)>::value &&
                  std::is_same<decltype(OfxPlugin::mainEntry), OfxPluginEntryPoint*>::value,
              "OfxPlugin member types");

static_assert(offsetof(OfxRectI, x1) == 0 && offsetof(OfxRectI, y1) == 4 && offsetof(OfxRectI, x2) == 8 &&
                  offsetof(OfxRectI, y2) == 12 && sizeof(OfxRectI) == 16,
              "OfxRectI");
static_assert(offsetof(OfxRectD, x1) == 0 && offsetof(OfxRectD, y1) == 8 && offsetof(OfxRectD, x2) == 16 &&
                  offsetof(OfxRectD, y2) == 24 && sizeof(OfxRectD) == 32,
              "OfxRectD");
static_assert(offsetof(OfxRangeD, min) == 0 && offsetof(OfxRangeD, max) == 8 && sizeof(OfxRangeD) == 16, "OfxRangeD");

// -- suites: every member at its place, nothing more -------------------------------------------------
static_assert(offsetof(OfxPropertySuiteV1, propSetPointer) == 0 * P, "OfxPropertySuiteV1::propSetPointer");
static_assert(offsetof(OfxPropertySuiteV1, propSetString) == 1 * P, "OfxPropertySuiteV1::propSetString");
static_assert(offsetof(OfxPropertySuiteV1, propSetDouble) == 2 * P, "OfxPropertySuiteV1::propSetDouble");
static_assert(offsetof(OfxPropertySuiteV1, propSetInt) == 3 * P, "OfxPropertySuiteV1::propSetInt");
static_assert(offsetof(OfxPropertySuiteV1, propSetPointerN) == 4 * P, "OfxPropertySuiteV1::propSetPointerN");
static_assert(offsetof(OfxPropertySuiteV1, propSetStringN) == 5 * P, "OfxPropertySuiteV1::propSetStringN");
static_assert(offsetof(OfxPropertySuiteV1, propSetDoubleN) == 6 * P, "OfxPropertySuiteV1::propSetDoubleN");
static_assert(offsetof(OfxPropertySuiteV1, propSetIntN) == 7 * P, "OfxPropertySuiteV1::propSetIntN");
static_assert(offsetof(OfxPropertySuiteV1, propGetPointer) == 8 * P, "OfxPropertySuiteV1::propGetPointer");
static_assert(offsetof(OfxPropertySuiteV1, propGetString) == 9 * P, "OfxPropertySuiteV1::propGetString");
static_assert(offsetof(OfxPropertySuiteV1, propGetDouble) == 10 * P, "OfxPropertySuiteV1::propGetDouble");
static_assert(offsetof(OfxPropertySuiteV1, propGetInt) == 11 * P, "OfxPropertySuiteV1::propGetInt");
static_assert(offsetof(OfxPropertySuiteV1, propGetPointerN) == 12 * P, "OfxPropertySuiteV1::propGetPointerN");
static_assert(offsetof(OfxPropertySuiteV1, propGetStringN) == 13 * P, "OfxPropertySuiteV1::propGetStringN");
static_assert(offsetof(OfxPropertySuiteV1, propGetDoubleN) == 14 * P, "OfxPropertySuiteV1::propGetDoubleN");
static_assert(offsetof(OfxPropertySuiteV1, propGetIntN) == 15 * P, "OfxPropertySuiteV1::propGetIntN");
static_assert(offsetof(OfxPropertySuiteV1, propReset) == 16 * P, "OfxPropertySuiteV1::propReset");
static_assert(offsetof(OfxPropertySuiteV1, propGetDimension) == 17 * P, "OfxPropertySuiteV1::propGetDimension");
static_assert(sizeof(OfxPropertySuiteV1) == 18 * P, "OfxPropertySuiteV1");
static_assert(offsetof(OfxImageEffectSuiteV1, getPropertySet) == 0 * P, "OfxImageEffectSuiteV1::getPropertySet");
static_assert(offsetof(OfxImageEffectSuiteV1, getParamSet) == 1 * P, "OfxImageEffectSuiteV1::getParamSet");
static_assert(offsetof(OfxImageEffectSuiteV1, clipDefine) == 2 * P, "OfxImageEffectSuiteV1::clipDefine");
static_assert(offsetof(OfxImageEffectSuiteV1, clipGetHandle) == 3 * P, "OfxImageEffectSuiteV1::clipGetHandle");
static_assert(offsetof(OfxImageEffectSuiteV1, clipGetPropertySet) == 4 * P, "OfxImageEffectSuiteV1::clipGetPropertySet");
static_assert(offsetof(OfxImageEffectSuiteV1, clipGetImage) == 5 * P, "OfxImageEffectSuiteV1::clipGetImage");
static_assert(offsetof(OfxImageEffectSuiteV1, clipReleaseImage) == 6 * P, "OfxImageEffectSuiteV1::clipReleaseImage");
static_assert(offsetof(OfxImageEffectSuiteV1, clipGetRegionOfDefinition) == 7 * P, "OfxImageEffectSuiteV1::clipGetRegionOfDefinition");
static_assert(offsetof(OfxImageEffectSuiteV1, abort) == 8 * P, "OfxImageEffectSuiteV1::abort");
static_assert(offsetof(OfxImageEffectSuiteV1, imageMemoryAlloc) == 9 * P, "OfxImageEffectSuiteV1::imageMemoryAlloc");
static_assert(offsetof(OfxImageEffectSuiteV1, imageMemoryFree) == 10 * P, "OfxImageEffectSuiteV1::imageMemoryFree");
static_assert(offsetof(OfxImageEffectSuiteV1, imageMemoryLock) == 11 * P, "OfxImageEffectSuiteV1::imageMemoryLock");
static_assert(offsetof(OfxImageEffectSuiteV1, imageMemoryUnlock) == 12 * P, "OfxImageEffectSuiteV1::imageMemoryUnlock");
static_assert(sizeof(OfxImageEffectSuiteV1) == 13 * P, "OfxImageEffectSuiteV1");
static_assert(offsetof(OfxParameterSuiteV1, paramDefine) == 0 * P, "OfxParameterSuiteV1::paramDefine");
static_assert(offsetof(OfxParameterSuiteV1, paramGetHandle) == 1 * P, "OfxParameterSuiteV1::paramGetHandle");
static_assert(offsetof(OfxParameterSuiteV1, paramSetGetPropertySet) == 2 * P, "OfxParameterSuiteV1::paramSetGetPropertySet");
static_assert(offsetof(OfxParameterSuiteV1, paramGetPropertySet) == 3 * P, "OfxParameterSuiteV1::paramGetPropertySet");
static_assert(offsetof(OfxParameterSuiteV1, paramGetValue) == 4 * P, "OfxParameterSuiteV1::paramGetValue");
static_assert(offsetof(OfxParameterSuiteV1, paramGetValueAtTime) == 5 * P, "OfxParameterSuiteV1::paramGetValueAtTime");
static_assert(offsetof(OfxParameterSuiteV1, paramGetDerivative) == 6 * P, "OfxParameterSuiteV1::paramGetDerivative");
static_assert(offsetof(OfxParameterSuiteV1, paramGetIntegral) == 7 * P, "OfxParameterSuiteV1::paramGetIntegral");
static_assert(offsetof(OfxParameterSuiteV1, paramSetValue) == 8 * P, "OfxParameterSuiteV1::paramSetValue");
static_assert(offsetof(OfxParameterSuiteV1, paramSetValueAtTime) == 9 * P, "OfxParameterSuiteV1::paramSetValueAtTime");
static_assert(offsetof(OfxParameterSuiteV1, paramGetNumKeys) == 10 * P, "OfxParameterSuiteV1::paramGetNumKeys");
static_assert(offsetof(OfxParameterSuiteV1, paramGetKeyTime) == 11 * P, "OfxParameterSuiteV1::paramGetKeyTime");
static_assert(offsetof(OfxParameterSuiteV1, paramGetKeyIndex) == 12 * P, "OfxParameterSuiteV1::paramGetKeyIndex");
static_assert(offsetof(OfxParameterSuiteV1, paramDeleteKey) == 13 * P, "OfxParameterSuiteV1::paramDeleteKey");
static_assert(offsetof(OfxParameterSuiteV1, paramDeleteAllKeys) == 14 * P, "OfxParameterSuiteV1::paramDeleteAllKeys");
static_assert(offsetof(OfxParameterSuiteV1, paramCopy) == 15 * P, "OfxParameterSuiteV1::paramCopy");
static_assert(offsetof(OfxParameterSuiteV1, paramEditBegin) == 16 * P, "OfxParameterSuiteV1::paramEditBegin");
static_assert(offsetof(OfxParameterSuiteV1, paramEditEnd) == 17 * P, "OfxParameterSuiteV1::paramEditEnd");
static_assert(sizeof(OfxParameterSuiteV1) == 18 * P, "OfxParameterSuiteV1");
static_assert(offsetof(OfxMessageSuiteV1, message) == 0 * P, "OfxMessageSuiteV1::message");
static_assert(sizeof(OfxMessageSuiteV1) == 1 * P, "OfxMessageSuiteV1");
static_assert(offsetof(OfxMessageSuiteV2, message) == 0 * P, "OfxMessageSuiteV2::message");
static_assert(offsetof(OfxMessageSuiteV2, setPersistentMessage) == 1 * P, "OfxMessageSuiteV2::setPersistentMessage");
static_assert(offsetof(OfxMessageSuiteV2, clearPersistentMessage) == 2 * P, "OfxMessageSuiteV2::clearPersistentMessage");
static_assert(sizeof(OfxMessageSuiteV2) == 3 * P, "OfxMessageSuiteV2");
static_assert(offsetof(OfxProgressSuiteV1, progressStart) == 0 * P, "OfxProgressSuiteV1::progressStart");
static_assert(offsetof(OfxProgressSuiteV1, progressUpdate) == 1 * P, "OfxProgressSuiteV1::progressUpdate");
static_assert(offsetof(OfxProgressSuiteV1, progressEnd) == 2 * P, "OfxProgressSuiteV1::progressEnd");
static_assert(sizeof(OfxProgressSuiteV1) == 3 * P, "OfxProgressSuiteV1");

// -- every constant we declare, as the official headers define it --------------------------------
static_assert(kOfxStatOK == 0, "kOfxStatOK");
static_assert(kOfxStatFailed == 1, "kOfxStatFailed");
static_assert(kOfxStatErrFatal == 2, "kOfxStatErrFatal");
static_assert(kOfxStatErrUnknown == 3, "kOfxStatErrUnknown");
static_assert(kOfxStatErrMissingHostFeature == 4, "kOfxStatErrMissingHostFeature");
static_assert(kOfxStatErrUnsupported == 5, "kOfxStatErrUnsupported");
static_assert(kOfxStatErrExists == 6, "kOfxStatErrExists");
static_assert(kOfxStatErrFormat == 7, "kOfxStatErrFormat");
static_assert(kOfxStatErrMemory == 8, "kOfxStatErrMemory");
static_assert(kOfxStatErrBadHandle == 9, "kOfxStatErrBadHandle");
static_assert(kOfxStatErrBadIndex == 10, "kOfxStatErrBadIndex");
static_assert(kOfxStatErrValue == 11, "kOfxStatErrValue");
static_assert(kOfxStatReplyYes == 12, "kOfxStatReplyYes");
static_assert(kOfxStatReplyNo == 13, "kOfxStatReplyNo");
static_assert(kOfxStatReplyDefault == 14, "kOfxStatReplyDefault");
static_assert(kOfxStatErrImageFormat == 1000, "kOfxStatErrImageFormat");
static_assert(same(kOfxActionLoad, "OfxActionLoad"), "kOfxActionLoad");
static_assert(same(kOfxActionUnload, "OfxActionUnload"), "kOfxActionUnload");
static_assert(same(kOfxActionDescribe, "OfxActionDescribe"), "kOfxActionDescribe");
static_assert(same(kOfxActionCreateInstance, "OfxActionCreateInstance"), "kOfxActionCreateInstance");
static_assert(same(kOfxActionDestroyInstance, "OfxActionDestroyInstance"), "kOfxActionDestroyInstance");
static_assert(same(kOfxActionPurgeCaches, "OfxActionPurgeCaches"), "kOfxActionPurgeCaches");
static_assert(same(kOfxPropTime, "OfxPropTime"), "kOfxPropTime");
static_assert(same(kOfxPropName, "OfxPropName"), "kOfxPropName");
static_assert(same(kOfxPropLabel, "OfxPropLabel"), "kOfxPropLabel");
static_assert(same(kOfxPropType, "OfxPropType"), "kOfxPropType");
static_assert(same(kOfxPropInstanceData, "OfxPropInstanceData"), "kOfxPropInstanceData");
static_assert(same(kOfxPropPluginDescription, "OfxPropPluginDescription"), "kOfxPropPluginDescription");
static_assert(same(kOfxPropVersion, "OfxPropVersion"), "kOfxPropVersion");
static_assert(same(kOfxPropVersionLabel, "OfxPropVersionLabel"), "kOfxPropVersionLabel");
static_assert(same(kOfxBitDepthNone, "OfxBitDepthNone"), "kOfxBitDepthNone");
static_assert(same(kOfxBitDepthByte, "OfxBitDepthByte"), "kOfxBitDepthByte");
static_assert(same(kOfxBitDepthShort, "OfxBitDepthShort"), "kOfxBitDepthShort");
static_assert(same(kOfxBitDepthFloat, "OfxBitDepthFloat"), "kOfxBitDepthFloat");
static_assert(same(kOfxPropertySuite, "OfxPropertySuite"), "kOfxPropertySuite");
static_assert(same(kOfxImageEffectPluginApi, "OfxImageEffectPluginAPI"), "kOfxImageEffectPluginApi");
static_assert(kOfxImageEffectPluginApiVersion == 1, "kOfxImageEffectPluginApiVersion");
static_assert(same(kOfxImageEffectActionDescribeInContext, "OfxImageEffectActionDescribeInContext"), "kOfxImageEffectActionDescribeInContext");
static_assert(same(kOfxImageEffectActionRender, "OfxImageEffectActionRender"), "kOfxImageEffectActionRender");
static_assert(same(kOfxImageEffectActionGetFramesNeeded, "OfxImageEffectActionGetFramesNeeded"), "kOfxImageEffectActionGetFramesNeeded");
static_assert(same(kOfxImageEffectContextTransition, "OfxImageEffectContextTransition"), "kOfxImageEffectContextTransition");
static_assert(same(kOfxImageEffectContextGeneral, "OfxImageEffectContextGeneral"), "kOfxImageEffectContextGeneral");
static_assert(same(kOfxImageEffectTransitionSourceFromClipName, "SourceFrom"), "kOfxImageEffectTransitionSourceFromClipName");
static_assert(same(kOfxImageEffectTransitionSourceToClipName, "SourceTo"), "kOfxImageEffectTransitionSourceToClipName");
static_assert(same(kOfxImageEffectOutputClipName, "Output"), "kOfxImageEffectOutputClipName");
static_assert(same(kOfxImageEffectTransitionParamName, "Transition"), "kOfxImageEffectTransitionParamName");
static_assert(same(kOfxImageComponentRGBA, "OfxImageComponentRGBA"), "kOfxImageComponentRGBA");
static_assert(same(kOfxImagePreMultiplied, "OfxImageAlphaPremultiplied"), "kOfxImagePreMultiplied");
static_assert(same(kOfxImageEffectPropSupportedContexts, "OfxImageEffectPropSupportedContexts"), "kOfxImageEffectPropSupportedContexts");
static_assert(same(kOfxImageEffectPropSupportedPixelDepths, "OfxImageEffectPropSupportedPixelDepths"), "kOfxImageEffectPropSupportedPixelDepths");
static_assert(same(kOfxImageEffectPropSupportedComponents, "OfxImageEffectPropSupportedComponents"), "kOfxImageEffectPropSupportedComponents");
static_assert(same(kOfxImageEffectPluginPropGrouping, "OfxImageEffectPluginPropGrouping"), "kOfxImageEffectPluginPropGrouping");
static_assert(same(kOfxImageEffectPluginRenderThreadSafety, "OfxImageEffectPluginRenderThreadSafety"), "kOfxImageEffectPluginRenderThreadSafety");
static_assert(same(kOfxImageEffectRenderInstanceSafe, "OfxImageEffectRenderInstanceSafe"), "kOfxImageEffectRenderInstanceSafe");
static_assert(same(kOfxImageEffectPluginPropHostFrameThreading, "OfxImageEffectPluginPropHostFrameThreading"), "kOfxImageEffectPluginPropHostFrameThreading");
static_assert(same(kOfxImageEffectPropSupportsMultipleClipDepths, "OfxImageEffectPropMultipleClipDepths"), "kOfxImageEffectPropSupportsMultipleClipDepths");
static_assert(same(kOfxImageEffectPropSupportsTiles, "OfxImageEffectPropSupportsTiles"), "kOfxImageEffectPropSupportsTiles");
static_assert(same(kOfxImageEffectPropTemporalClipAccess, "OfxImageEffectPropTemporalClipAccess"), "kOfxImageEffectPropTemporalClipAccess");
static_assert(same(kOfxImageEffectPropContext, "OfxImageEffectPropContext"), "kOfxImageEffectPropContext");
static_assert(same(kOfxImageEffectPropPixelDepth, "OfxImageEffectPropPixelDepth"), "kOfxImageEffectPropPixelDepth");
static_assert(same(kOfxImageEffectPropComponents, "OfxImageEffectPropComponents"), "kOfxImageEffectPropComponents");
static_assert(same(kOfxImageEffectPropPreMultiplication, "OfxImageEffectPropPreMultiplication"), "kOfxImageEffectPropPreMultiplication");
static_assert(same(kOfxImageEffectPropFrameRange, "OfxImageEffectPropFrameRange"), "kOfxImageEffectPropFrameRange");
static_assert(same(kOfxImageEffectPropRenderScale, "OfxImageEffectPropRenderScale"), "kOfxImageEffectPropRenderScale");
static_assert(same(kOfxImageEffectPropRenderWindow, "OfxImageEffectPropRenderWindow"), "kOfxImageEffectPropRenderWindow");
static_assert(same(kOfxImageEffectInstancePropEffectDuration, "OfxImageEffectInstancePropEffectDuration"), "kOfxImageEffectInstancePropEffectDuration");
static_assert(same(kOfxImageClipPropOptional, "OfxImageClipPropOptional"), "kOfxImageClipPropOptional");
static_assert(same(kOfxImagePropData, "OfxImagePropData"), "kOfxImagePropData");
static_assert(same(kOfxImagePropBounds, "OfxImagePropBounds"), "kOfxImagePropBounds");
static_assert(same(kOfxImagePropRowBytes, "OfxImagePropRowBytes"), "kOfxImagePropRowBytes");
static_assert(same(kOfxImageEffectSuite, "OfxImageEffectSuite"), "kOfxImageEffectSuite");
static_assert(same(kOfxParamTypeInteger, "OfxParamTypeInteger"), "kOfxParamTypeInteger");
static_assert(same(kOfxParamTypeDouble, "OfxParamTypeDouble"), "kOfxParamTypeDouble");
static_assert(same(kOfxParamTypeBoolean, "OfxParamTypeBoolean"), "kOfxParamTypeBoolean");
static_assert(same(kOfxParamTypeString, "OfxParamTypeString"), "kOfxParamTypeString");
static_assert(same(kOfxParamPropType, "OfxParamPropType"), "kOfxParamPropType");
static_assert(same(kOfxParamPropDefault, "OfxParamPropDefault"), "kOfxParamPropDefault");
static_assert(same(kOfxParamPropMin, "OfxParamPropMin"), "kOfxParamPropMin");
static_assert(same(kOfxParamPropMax, "OfxParamPropMax"), "kOfxParamPropMax");
static_assert(same(kOfxParamPropDisplayMin, "OfxParamPropDisplayMin"), "kOfxParamPropDisplayMin");
static_assert(same(kOfxParamPropDisplayMax, "OfxParamPropDisplayMax"), "kOfxParamPropDisplayMax");
static_assert(same(kOfxParamPropHint, "OfxParamPropHint"), "kOfxParamPropHint");
static_assert(same(kOfxParamPropAnimates, "OfxParamPropAnimates"), "kOfxParamPropAnimates");
static_assert(same(kOfxParamPropStringMode, "OfxParamPropStringMode"), "kOfxParamPropStringMode");
static_assert(same(kOfxParamPropEvaluateOnChange, "OfxParamPropEvaluateOnChange"), "kOfxParamPropEvaluateOnChange");
static_assert(same(kOfxParamStringIsSingleLine, "OfxParamStringIsSingleLine"), "kOfxParamStringIsSingleLine");
static_assert(same(kOfxParamStringIsMultiLine, "OfxParamStringIsMultiLine"), "kOfxParamStringIsMultiLine");
static_assert(same(kOfxParameterSuite, "OfxParameterSuite"), "kOfxParameterSuite");
static_assert(same(kOfxMessageSuite, "OfxMessageSuite"), "kOfxMessageSuite");
static_assert(same(kOfxMessageError, "OfxMessageError"), "kOfxMessageError");
static_assert(same(kOfxMessageWarning, "OfxMessageWarning"), "kOfxMessageWarning");
static_assert(same(kOfxMessageMessage, "OfxMessageMessage"), "kOfxMessageMessage");
static_assert(same(kOfxProgressSuite, "OfxProgressSuite"), "kOfxProgressSuite");

// DaVinci Resolve's thumbnail flag is no OpenFX constant: its string is the macro's own name.
static_assert(same(kOfxImageClipPropThumbnail, "kOfxImageClipPropThumbnail"), "kOfxImageClipPropThumbnail");

}  // namespace
