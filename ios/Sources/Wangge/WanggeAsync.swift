// Swift concurrency over the generated bindings (Wangge.swift): the store's changes as an
// AsyncStream, one sync with its errors sorted by what the app does next, and any error's
// readable reason.

import Foundation

extension FieldStore {
    /// The store's changes (captures here, and what a sync or enrollment brought). Each
    /// access returns a new stream, subscribed at once; its subscription is cancelled when
    /// the iterating task is cancelled, the loop ends, or the stream is released — e.g.
    /// SwiftUI's `.task { for await change in store.changes { … } }` listens while the view is shown.
    ///
    /// The store calls listeners on the thread that made the change; the stream only
    /// buffers (unbounded: each change names different records) and never blocks it.
    public var changes: AsyncStream<StoreChange> {
        AsyncStream(bufferingPolicy: .unbounded) { continuation in
            let subscription = subscribe(listener: ChangeForwarder(continuation: continuation))
            continuation.onTermination = { _ in subscription.cancel() }
        }
    }

    /// The changes that concern `grid` (a record of it, or the grid itself).
    public func changes(ofGrid grid: String) -> AsyncFilterSequence<AsyncStream<StoreChange>> {
        changes.filter { $0.grids.contains(grid) }
    }

    /// Syncs once: pushes what the server has not acknowledged, pulls what this device may
    /// see, uploads photos waiting. `progress` hears of each page on the sync's thread.
    /// Cancelling the task interrupts the sync safely (a round cut off is repeated next time).
    /// Throws only what is not an `ApiError` (a panic in the library, cancellation).
    public func syncOnce(progress: (@Sendable (SyncProgress) -> Void)? = nil) async throws -> SyncResult {
        var listener: SyncProgressListener?
        if let progress {
            listener = ProgressForwarder(handler: progress)
        }
        do {
            return .synced(try await sync(listener: listener))
        } catch let error as ApiError {
            return SyncResult(classifying: error)
        }
    }
}

/// What one sync attempt came to, by what the app does next.
public enum SyncResult {
    /// Pushed and pulled everything; photos waiting were uploaded.
    case synced(SyncReport)
    /// The server could not be reached, timed out or answered 5xx: try again later (a
    /// `BGAppRefreshTask`, or when the network comes back). Captures stay on the device.
    case retry(ApiError)
    /// Not enrolled, or the server no longer knows this device's token (401
    /// `unauthorized`): ask the worker for a new enrollment code.
    case needsEnrollment(ApiError)
    /// The operator revoked this device: the library has already wiped the store (database,
    /// photos, tracks); stop syncing, drop the store and show enrollment again.
    case revoked(ApiError)
    /// Retrying unchanged will not help: a refusal (e.g. `unsupported_version`: update the
    /// app), or a store that cannot be used.
    case failed(ApiError)

    public init(classifying error: ApiError) {
        switch error {
        case .Network:
            self = .retry(error)
        case .NotEnrolled:
            self = .needsEnrollment(error)
        case .Refused(let status, _, _) where status == 401:
            self = .needsEnrollment(error)
        case .Revoked:
            self = .revoked(error)
        case .InvalidInput, .NotFound, .NotAllowed, .Refused, .Storage:
            self = .failed(error)
        }
    }
}

extension ApiError {
    /// The readable message of any case, to show the worker (every case carries it).
    public var reason: String {
        switch self {
        case .InvalidInput(_, let reason), .NotFound(let reason), .NotAllowed(let reason),
             .NotEnrolled(let reason), .Revoked(let reason), .Network(let reason),
             .Refused(_, _, let reason), .Storage(let reason):
            return reason
        }
    }
}

private final class ChangeForwarder: ChangeListener {
    let continuation: AsyncStream<StoreChange>.Continuation

    init(continuation: AsyncStream<StoreChange>.Continuation) {
        self.continuation = continuation
    }

    func onChange(change: StoreChange) {
        continuation.yield(change)
    }
}

private final class ProgressForwarder: SyncProgressListener {
    let handler: @Sendable (SyncProgress) -> Void

    init(handler: @escaping @Sendable (SyncProgress) -> Void) {
        self.handler = handler
    }

    func onProgress(progress: SyncProgress) {
        handler(progress)
    }
}
