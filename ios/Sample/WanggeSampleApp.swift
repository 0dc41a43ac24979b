// A minimal iOS app on the Wangge package: enroll, capture a household offline, sync.
// Not a package target (the package builds for iOS only): create an iOS App in Xcode, add
// the local package ../ (File > Add Package Dependencies… > Add Local…), and use these two
// files as its sources. See ../README.md.

import SwiftUI
import Wangge

@main
struct WanggeSampleApp: App {
    @StateObject private var model = FieldModel()

    var body: some Scene {
        WindowGroup {
            ContentView(model: model)
        }
    }
}

/// The app's one store (a store file may be open once per process) and what the screen shows.
@MainActor
final class FieldModel: ObservableObject {
    let store: FieldStore
    @Published var households: [HouseholdSummary] = []
    @Published var grid: String?
    @Published var status = ""

    init() {
        // Application Support is private to the app and backed up; the photos go to a
        // directory beside the store file.
        let directory = FileManager.default.urls(for: .applicationSupportDirectory, in: .userDomainMask)[0]
            .appendingPathComponent("wangge", isDirectory: true)
        do {
            try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
            store = try FieldStore.open(path: directory.appendingPathComponent("field.db").path, worker: nil)
        } catch {
            fatalError("the store cannot be opened: \(error)")
        }
        refresh()
    }

    /// Refreshes on every change of the store, whatever made it, until the view goes away.
    func watch() async {
        for await _ in store.changes {
            refresh()
        }
    }

    func refresh() {
        do {
            grid = try store.grids().first?.code
            households = try grid.map { try store.listHouseholds(grid: $0) } ?? []
        } catch {
            status = "\(error)"
        }
    }

    func enroll(serverUrl: String, code: String) async {
        do {
            let worker = try await store.enroll(serverUrl: serverUrl, code: code, deviceName: "wangge sample")
            status = "登记成功 enrolled as \(worker.person)"
        } catch let error as ApiError {
            status = "登记失败 enrollment failed: \(error.reason)"
        } catch {
            status = "登记失败 enrollment failed: \(error)"
        }
    }

    /// Works offline: both records are saved on the device before this returns.
    func addHousehold(address: String, head: String) {
        guard let grid else {
            status = "请先登记 enroll first: the grids come with enrollment"
            return
        }
        do {
            let household = try store.addHousehold(
                grid: grid, household: NewHousehold(address: address, residenceType: .registered))
            _ = try store.addResident(
                grid: grid,
                resident: NewResident(household: household, name: head, relation: .head, residenceType: .registered))
            status = "已保存 saved; \(try store.syncStatus().pendingChanges) changes to sync"
        } catch let error as ApiError {
            status = "未保存 not saved: \(error.reason)"
        } catch {
            status = "未保存 not saved: \(error)"
        }
    }

    func sync() async {
        status = "同步中 syncing…"
        do {
            switch try await store.syncOnce(progress: { progress in
                Task { @MainActor in self.status = "page \(progress.pages): \(progress.bytesReceived) B" }
            }) {
            case .synced(let report):
                status = "已同步 synced: \(report.changesPushed) changes up, \(report.docsPulled) documents down"
            case .retry(let error):
                status = "无网络 offline, try later: \(error.reason)"
            case .needsEnrollment(let error):
                status = "请登记 enroll (again): \(error.reason)"
            case .revoked:
                status = "设备已停用 this device was revoked: its data must be wiped"
            case .failed(let error):
                status = "同步失败 sync failed: \(error.reason)"
            }
        } catch {
            status = "\(error)"
        }
    }
}
