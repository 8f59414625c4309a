// swift-tools-version: 6.1
import PackageDescription

// Every target opts into the same upcoming features (see ../shared/STYLE.md):
// explicit `public import` for re-exported types, `any` for existentials, and
// member lookups that only see what a file imports.
let strict: [SwiftSetting] = [
    .enableUpcomingFeature("ExistentialAny"),
    .enableUpcomingFeature("MemberImportVisibility"),
    .enableUpcomingFeature("InternalImportsByDefault"),
]

let package = Package(
    name: "Torpor",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "torpor", targets: ["torpor"]),
        .executable(name: "torpor-bench", targets: ["torpor-bench"]),
        .library(name: "TorporEC2", targets: ["TorporEC2"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
        .package(url: "https://github.com/apple/swift-log", from: "1.6.0"),
        .package(url: "https://github.com/hummingbird-project/hummingbird", from: "2.5.0"),
        .package(url: "https://github.com/jpsim/Yams", from: "6.0.0"),
        .package(url: "https://github.com/apple/swift-nio", from: "2.80.0"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle", from: "2.6.0"),
        .package(url: "https://github.com/groue/GRDB.swift", from: "7.0.0"),
        .package(url: "https://github.com/apple/swift-metrics", from: "2.5.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus", from: "2.0.0"),
    ],
    targets: [
        // C shims: only the headers and typed wrappers over variadic C calls.
        .systemLibrary(
            name: "CCurl",
            pkgConfig: "libcurl",
            providers: [.apt(["libcurl4-openssl-dev"])]
        ),
        .systemLibrary(
            name: "CLibCrypto",
            pkgConfig: "libcrypto",
            providers: [.apt(["libssl-dev"])]
        ),

        // Signature Version 4: no HTTP client, no clock, no credential lookup.
        .target(
            name: "TorporSigV4",
            dependencies: ["CLibCrypto"],
            swiftSettings: strict
        ),

        // The AWS client core: transport, credentials, retries, endpoints,
        // errors, Query-protocol encoding and XML decoding.
        .target(
            name: "TorporAWS",
            dependencies: [
                "TorporSigV4",
                "CCurl",
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: strict
        ),

        // EC2 operations and their typed results.
        .target(
            name: "TorporEC2",
            dependencies: ["TorporAWS"],
            swiftSettings: strict
        ),

        // The fleet engine: selection, plans, paced execution, waits.
        .target(
            name: "TorporFleet",
            dependencies: ["TorporEC2", .product(name: "Logging", package: "swift-log")],
            swiftSettings: strict
        ),

        // The durable job queue (SQLite through GRDB), behind a protocol.
        .target(
            name: "TorporQueue",
            dependencies: [.product(name: "GRDB", package: "GRDB.swift")],
            swiftSettings: strict
        ),

        // Policies and configuration: Config/torpor.yaml.
        .target(
            name: "TorporPolicies",
            dependencies: ["TorporYAML", "TorporReports", .product(name: "Yams", package: "Yams")],
            swiftSettings: strict
        ),

        // Report values and their HTML rendering: Foundation only.
        .target(
            name: "TorporReports",
            swiftSettings: strict
        ),

        // Resume measurement: the tracker, readiness probes, the store of
        // measurements (beside the queue), objectives and the report builder.
        .target(
            name: "TorporResume",
            dependencies: [
                "TorporReports", "TorporPolicies", "TorporFleet", "TorporEC2", "TorporAWS", "TorporQueue", "TorporSigV4",
                .product(name: "GRDB", package: "GRDB.swift"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "CoreMetrics", package: "swift-metrics"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: strict
        ),

        // The worker's services: job kinds, the runner, the queue consumer,
        // metrics.
        .target(
            name: "TorporWorker",
            dependencies: [
                "TorporQueue", "TorporFleet", "TorporEC2", "TorporAWS", "TorporResume", "TorporPolicies",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: strict
        ),

        // Line-aware YAML reading: every error names its file and line.
        .target(
            name: "TorporYAML",
            dependencies: [.product(name: "Yams", package: "Yams")],
            swiftSettings: strict
        ),

        // The fleet simulator: an EC2-compatible endpoint with lifecycle
        // timings, hibernation rules, throttling, spot prices and faults.
        .target(
            name: "TorporSim",
            dependencies: [
                "TorporSigV4",
                "TorporAWS",
                "TorporYAML",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "UnixSignals", package: "swift-service-lifecycle"),
                .product(name: "Yams", package: "Yams"),
            ],
            swiftSettings: strict
        ),

        // The command line, as a library so that tests can parse its commands.
        .target(
            name: "TorporCLI",
            dependencies: [
                "TorporEC2",
                "TorporFleet",
                "TorporSim",
                "TorporQueue",
                "TorporPolicies",
                "TorporWorker",
                "TorporYAML",
                "TorporResume",
                "TorporReports",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "UnixSignals", package: "swift-service-lifecycle"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: strict
        ),
        .executableTarget(
            name: "torpor",
            dependencies: ["TorporCLI"],
            swiftSettings: strict
        ),
        .executableTarget(
            name: "torpor-bench",
            dependencies: ["TorporEC2", "TorporFleet", "TorporSim", "TorporQueue", "TorporResume", "TorporPolicies", "TorporReports", "TorporAWS"],
            swiftSettings: strict
        ),

        // What the test targets share: the simulator in the test process,
        // fleet builders, options and retries for runs against it, polling
        // and temporary directories. A library, so that tests can import it.
        .target(
            name: "TorporTestSupport",
            dependencies: [
                "TorporSim", "TorporFleet", "TorporEC2", "TorporAWS", "TorporSigV4",
                .product(name: "Logging", package: "swift-log"),
            ],
            path: "Tests/TorporTestSupport",
            swiftSettings: strict
        ),

        .testTarget(
            name: "TorporSigV4Tests",
            dependencies: ["TorporSigV4", "TorporTestSupport"],
            swiftSettings: strict
        ),
        .testTarget(
            name: "TorporAWSTests",
            dependencies: ["TorporAWS", "TorporEC2"],
            swiftSettings: strict
        ),
        .testTarget(
            name: "TorporSimTests",
            dependencies: ["TorporSim", "TorporEC2", "TorporYAML", "TorporTestSupport"],
            swiftSettings: strict
        ),
        .testTarget(
            name: "TorporFleetTests",
            dependencies: ["TorporFleet", "TorporSim", "TorporEC2", "TorporAWS", "TorporTestSupport"],
            swiftSettings: strict
        ),
        .testTarget(
            name: "TorporQueueTests",
            dependencies: [
                "TorporQueue", "TorporWorker", "TorporPolicies", "TorporFleet", "TorporSim", "TorporEC2", "TorporAWS",
                "TorporTestSupport",
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: strict
        ),
        .testTarget(
            name: "TorporReportsTests",
            dependencies: ["TorporReports", "TorporTestSupport"],
            swiftSettings: strict
        ),
        .testTarget(
            name: "TorporResumeTests",
            dependencies: [
                "TorporResume", "TorporReports", "TorporPolicies", "TorporFleet", "TorporSim", "TorporEC2", "TorporAWS", "TorporQueue",
                "TorporYAML", "TorporSigV4", "TorporTestSupport",
                .product(name: "GRDB", package: "GRDB.swift"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: strict
        ),
        .testTarget(
            name: "TorporIntegrationTests",
            dependencies: ["TorporEC2", "TorporFleet", "TorporSim", "TorporCLI", "TorporTestSupport", "torpor", "torpor-bench"],
            swiftSettings: strict
        ),
    ],
    swiftLanguageModes: [.v6]
)
