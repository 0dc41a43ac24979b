import SwiftUI
import Wangge

struct ContentView: View {
    @ObservedObject var model: FieldModel
    @State private var serverUrl = "http://127.0.0.1:7878"
    @State private var code = ""
    @State private var address = ""
    @State private var head = ""

    var body: some View {
        Form {
            Section("登记 Enrollment") {
                TextField("服务器 server URL", text: $serverUrl)
                    .textInputAutocapitalization(.never)
                    .keyboardType(.URL)
                TextField("登记码 enrollment code", text: $code)
                    .textInputAutocapitalization(.never)
                Button("登记 Enroll") { Task { await model.enroll(serverUrl: serverUrl, code: code) } }
            }
            Section("采集 Capture (offline)") {
                TextField("地址 address", text: $address)
                TextField("户主姓名 head of household", text: $head)
                Button("采集住户 Add household") { model.addHousehold(address: address, head: head) }
            }
            Section("同步 Sync") {
                Button("立即同步 Sync now") { Task { await model.sync() } }
                Text(model.status).font(.footnote)
            }
            Section(model.grid.map { "网格 \($0)" } ?? "未登记 not enrolled") {
                ForEach(model.households, id: \.id) { household in
                    Text("\(household.address ?? household.id) · \(household.headName ?? "?") · \(household.nResidents) 人")
                }
            }
        }
        .task { await model.watch() }
    }
}
