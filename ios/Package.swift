// swift-tools-version:5.9
// The wangge core for iOS: WanggeFFI.xcframework (the Rust library, static, for devices and
// simulators) and the Wangge module (the generated Swift bindings plus WanggeAsync.swift).
// Run scripts/build-ios-xcframework first: it builds the XCFramework and copies the
// generated Sources/Wangge/Wangge.swift (neither is committed).
import PackageDescription

let package = Package(
    name: "Wangge",
    platforms: [.iOS(.v15)],
    products: [
        .library(name: "Wangge", targets: ["Wangge"]),
    ],
    targets: [
        .binaryTarget(name: "WanggeFFI", path: "WanggeFFI.xcframework"),
        .target(
            name: "Wangge",
            dependencies: ["WanggeFFI"],
            path: "Sources/Wangge",
            linkerSettings: [
                // What the static Rust library needs from the system: certificate checks
                // through the platform verifier (Security), and libiconv for the libc crate.
                .linkedFramework("Security"),
                .linkedFramework("CoreFoundation"),
                .linkedLibrary("iconv"),
            ]
        ),
    ]
)
