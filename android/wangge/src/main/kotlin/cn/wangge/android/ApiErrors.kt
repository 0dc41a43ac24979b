package cn.wangge.android

import cn.wangge.core.ApiException

/**
 * The readable message of any [ApiException], to show the worker. Every case carries it as
 * `reason`; `message` (Throwable's) is uniffi's list of the fields, for logs.
 */
val ApiException.reason: String
    get() = when (this) {
        is ApiException.InvalidInput -> reason
        is ApiException.NotFound -> reason
        is ApiException.NotAllowed -> reason
        is ApiException.NotEnrolled -> reason
        is ApiException.Revoked -> reason
        is ApiException.Network -> reason
        is ApiException.Refused -> reason
        is ApiException.Storage -> reason
    }
