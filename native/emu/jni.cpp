// JNI bridge of the CUDA emulator: the native methods of io.hintgrpo.engine.cuda.EmuDriver,
// bound with RegisterNatives in JNI_OnLoad (a signature mismatch fails at load, not at first use).
// Every entry point holds one mutex: the emulator runs one launch at a time and its shared
// memory and allocation table are process-wide. C++ errors become EmuException.
#include <jni.h>

#include <mutex>

#include "emu.h"

namespace {

std::mutex g_lock;
jclass g_exception; // io.hintgrpo.engine.cuda.EmuException

template <class R, class F>
R guarded(JNIEnv* env, R fallback, F body) {
    std::lock_guard<std::mutex> hold(g_lock);
    try {
        return body();
    } catch (const std::exception& e) {
        env->ThrowNew(g_exception, e.what());
    } catch (...) {
        env->ThrowNew(g_exception, "unknown native error");
    }
    return fallback;
}

jlong nMalloc(JNIEnv* env, jclass, jlong bytes) {
    return guarded(env, (jlong)0, [&] {
        if (bytes < 0) throw hg_emu::EmuError(hg_emu::format("device allocation of %lld bytes", (long long)bytes));
        return (jlong)hg_emu::device_malloc((size_t)bytes);
    });
}

void nFree(JNIEnv* env, jclass, jlong address) {
    guarded(env, 0, [&] { hg_emu::device_free((uintptr_t)address); return 0; });
}

// array is a Java primitive array; the Java side checked byteOffset + bytes against its length.
void nCopyIn(JNIEnv* env, jclass, jlong dst, jobject array, jlong byteOffset, jlong bytes) {
    guarded(env, 0, [&] {
        void* p = env->GetPrimitiveArrayCritical((jarray)array, nullptr);
        if (!p) throw hg_emu::EmuError("cannot pin a Java array");
        try {
            hg_emu::copy_to_device((uintptr_t)dst, (const char*)p + byteOffset, (size_t)bytes);
        } catch (...) {
            env->ReleasePrimitiveArrayCritical((jarray)array, p, JNI_ABORT);
            throw;
        }
        env->ReleasePrimitiveArrayCritical((jarray)array, p, JNI_ABORT);
        return 0;
    });
}

void nCopyOut(JNIEnv* env, jclass, jobject array, jlong byteOffset, jlong src, jlong bytes) {
    guarded(env, 0, [&] {
        void* p = env->GetPrimitiveArrayCritical((jarray)array, nullptr);
        if (!p) throw hg_emu::EmuError("cannot pin a Java array");
        try {
            hg_emu::copy_from_device((char*)p + byteOffset, (uintptr_t)src, (size_t)bytes);
        } catch (...) {
            env->ReleasePrimitiveArrayCritical((jarray)array, p, JNI_ABORT);
            throw;
        }
        env->ReleasePrimitiveArrayCritical((jarray)array, p, 0);
        return 0;
    });
}

// buffer is a direct ByteBuffer (a pinned staging buffer); the Java side checked the range.
void nCopyInBuffer(JNIEnv* env, jclass, jlong dst, jobject buffer, jlong byteOffset, jlong bytes) {
    guarded(env, 0, [&] {
        char* p = (char*)env->GetDirectBufferAddress(buffer);
        if (!p) throw hg_emu::EmuError("not a direct buffer");
        hg_emu::copy_to_device((uintptr_t)dst, p + byteOffset, (size_t)bytes);
        return 0;
    });
}

void nCopyOutBuffer(JNIEnv* env, jclass, jobject buffer, jlong byteOffset, jlong src, jlong bytes) {
    guarded(env, 0, [&] {
        char* p = (char*)env->GetDirectBufferAddress(buffer);
        if (!p) throw hg_emu::EmuError("not a direct buffer");
        hg_emu::copy_from_device(p + byteOffset, (uintptr_t)src, (size_t)bytes);
        return 0;
    });
}

void nCopyDevice(JNIEnv* env, jclass, jlong dst, jlong src, jlong bytes) {
    guarded(env, 0, [&] { hg_emu::copy_device((uintptr_t)dst, (uintptr_t)src, (size_t)bytes); return 0; });
}

jint nFindKernel(JNIEnv* env, jclass, jstring name) {
    const char* s = env->GetStringUTFChars(name, nullptr);
    jint r = guarded(env, (jint)-1, [&] { return (jint)hg_emu::find_kernel(s); });
    env->ReleaseStringUTFChars(name, s);
    return r;
}

jobjectArray nKernelNames(JNIEnv* env, jclass) {
    std::lock_guard<std::mutex> hold(g_lock);
    jobjectArray r = env->NewObjectArray(hg_emu::kernel_count(), env->FindClass("java/lang/String"), nullptr);
    for (int i = 0; r && i < hg_emu::kernel_count(); i++) {
        jstring s = env->NewStringUTF(hg_emu::kernel(i).name);
        env->SetObjectArrayElement(r, i, s);
        env->DeleteLocalRef(s);
    }
    return r;
}

jstring nSignature(JNIEnv* env, jclass, jint kernel) {
    return guarded(env, (jstring) nullptr, [&] { return env->NewStringUTF(hg_emu::kernel(kernel).sig); });
}

// args: nargs values, then nargs kinds ('L', 'I', 'F').
void nLaunch(JNIEnv* env, jclass, jint kernel, jint gx, jint gy, jint gz, jint bx, jint by, jint bz, jint shared,
             jlongArray args, jint nargs) {
    jlong buf[128];
    if (nargs < 0 || nargs > 64) {
        env->ThrowNew(g_exception, "a launch takes at most 64 arguments");
        return;
    }
    env->GetLongArrayRegion(args, 0, 2 * nargs, buf);
    char kinds[64];
    for (int i = 0; i < nargs; i++) kinds[i] = (char)buf[nargs + i];
    unsigned grid[3] = {(unsigned)gx, (unsigned)gy, (unsigned)gz}, block[3] = {(unsigned)bx, (unsigned)by, (unsigned)bz};
    guarded(env, 0, [&] {
        if (gx <= 0 || gy <= 0 || gz <= 0 || bx <= 0 || by <= 0 || bz <= 0 || shared < 0)
            throw hg_emu::EmuError(hg_emu::format("kernel %s: grid (%d,%d,%d), block (%d,%d,%d), %d shared bytes: "
                                                  "dimensions must be positive", hg_emu::kernel(kernel).name, gx, gy,
                                                  gz, bx, by, bz, shared));
        hg_emu::launch(kernel, grid, block, (size_t)shared, reinterpret_cast<const uint64_t*>(buf), kinds, nargs);
        return 0;
    });
}

void nSetOrder(JNIEnv* env, jclass, jint order, jlong seed) {
    guarded(env, 0, [&] { hg_emu::set_order(order, (uint64_t)seed); return 0; });
}

void nSetWatchdog(JNIEnv* env, jclass, jdouble seconds) {
    guarded(env, 0, [&] { hg_emu::set_watchdog(seconds); return 0; });
}

void nCheckAll(JNIEnv* env, jclass) {
    guarded(env, 0, [&] { hg_emu::check_all_guards("at synchronize"); return 0; });
}

jlong nBytesInUse(JNIEnv* env, jclass) {
    return guarded(env, (jlong)0, [&] { return (jlong)hg_emu::bytes_in_use(); });
}

jlong nBudget(JNIEnv* env, jclass) {
    return guarded(env, (jlong)0, [&] { return (jlong)hg_emu::budget(); });
}

void nSetBudget(JNIEnv* env, jclass, jlong bytes) {
    guarded(env, 0, [&] { hg_emu::set_budget((size_t)bytes); return 0; });
}

#define NATIVE(name, sig) {(char*)#name, (char*)sig, (void*)&name}
JNINativeMethod g_methods[] = {
    NATIVE(nMalloc, "(J)J"),
    NATIVE(nFree, "(J)V"),
    NATIVE(nCopyIn, "(JLjava/lang/Object;JJ)V"),
    NATIVE(nCopyOut, "(Ljava/lang/Object;JJJ)V"),
    NATIVE(nCopyInBuffer, "(JLjava/nio/ByteBuffer;JJ)V"),
    NATIVE(nCopyOutBuffer, "(Ljava/nio/ByteBuffer;JJJ)V"),
    NATIVE(nCopyDevice, "(JJJ)V"),
    NATIVE(nFindKernel, "(Ljava/lang/String;)I"),
    NATIVE(nKernelNames, "()[Ljava/lang/String;"),
    NATIVE(nSignature, "(I)Ljava/lang/String;"),
    NATIVE(nLaunch, "(IIIIIIII[JI)V"),
    NATIVE(nSetOrder, "(IJ)V"),
    NATIVE(nSetWatchdog, "(D)V"),
    NATIVE(nCheckAll, "()V"),
    NATIVE(nBytesInUse, "()J"),
    NATIVE(nBudget, "()J"),
    NATIVE(nSetBudget, "(J)V"),
};

} // namespace

extern "C" JNIEXPORT jint JNI_OnLoad(JavaVM* vm, void*) {
    JNIEnv* env;
    if (vm->GetEnv(reinterpret_cast<void**>(&env), JNI_VERSION_1_8) != JNI_OK) return JNI_ERR;
    jclass driver = env->FindClass("io/hintgrpo/engine/cuda/EmuDriver");
    jclass exception = env->FindClass("io/hintgrpo/engine/cuda/EmuException");
    if (!driver || !exception) return JNI_ERR;
    g_exception = (jclass)env->NewGlobalRef(exception);
    if (env->RegisterNatives(driver, g_methods, sizeof g_methods / sizeof *g_methods) != 0) return JNI_ERR;
    return JNI_VERSION_1_8;
}
