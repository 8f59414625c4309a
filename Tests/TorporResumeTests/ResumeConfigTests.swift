import Foundation
import Testing
import TorporPolicies
import TorporReports
import TorporYAML

/// The `resume:` section of the configuration file.
@Suite("Resume policies in the configuration")
struct ResumeConfigTests {
    static let file = "torpor.yaml"

    func validate(_ text: String) -> (TorporConfiguration, [YAMLFileError]) {
        TorporConfiguration.validate(text, file: Self.file)
    }

    @Test("a full resume section: every policy, target, readiness, objective, window and deadline read")
    func fullSection() throws {
        let text = """
            log:
              level: info
            resume:
              pollInterval: 1500ms
              describeRate: 8
              policies:
                - name: web
                  targets: { tags: { Tier: web } }
                  readiness: { tcp: 443 }
                  objectives: { p50: 25s, p95: 60s, max: 120s }
                  window: 7d
                - name: api
                  targets:
                    tags: { Tier: api, Env: prod }
                    instanceTypes: [c5.xlarge, c5.2xlarge]
                  readiness: { http: "http://{ip}:8080/healthz", status: 204 }
                  objectives: { p95: 90s }
                  window: 12h
                  deadline: 5m
                - name: batch
                  targets: { tags: { Tier: batch } }
                  readiness: status-ok
                - name: legacy.v1
                  targets: { tags: { Tier: legacy }, instanceTypes: [t3.medium] }
                  readiness: running
                  deadline: 45s
            """
        let (config, problems) = validate(text)
        #expect(problems.isEmpty, "\(problems.map(\.description))")
        #expect(config.warnings.isEmpty, "\(config.warnings.map(\.description))")
        let resume = config.resume
        #expect(resume.pollInterval == 1.5)
        #expect(resume.describeRate == 8)
        #expect(resume.policies.map(\.name) == ["web", "api", "batch", "legacy.v1"])
        try #require(resume.policies.count == 4)

        let web = resume.policies[0]
        #expect(web.targets == PolicyTargets(tags: [PolicyTag(key: "Tier", value: "web")]))
        #expect(web.readiness == .tcp(port: 443))
        #expect(web.objectives == ResumeObjectives(p50: 25, p95: 60, max: 120))
        #expect(web.window == 7 * 86_400)
        #expect(web.deadline == 600, "the default deadline")
        #expect(web.line == 7)

        let api = resume.policies[1]
        #expect(Set(api.targets.tags) == [PolicyTag(key: "Tier", value: "api"), PolicyTag(key: "Env", value: "prod")])
        #expect(api.targets.instanceTypes == ["c5.xlarge", "c5.2xlarge"])
        #expect(api.readiness == .http(url: "http://{ip}:8080/healthz", status: 204))
        #expect(api.objectives == ResumeObjectives(p95: 90))
        #expect(api.window == 12 * 3600)
        #expect(api.deadline == 300)
        #expect(api.line == 12)

        let batch = resume.policies[2]
        #expect(batch.readiness == .statusOK)
        #expect(batch.objectives == ResumeObjectives())
        #expect(batch.window == 7 * 86_400, "the default window")
        #expect(batch.line == 20)

        let legacy = resume.policies[3]
        #expect(legacy.targets == PolicyTargets(tags: [PolicyTag(key: "Tier", value: "legacy")], instanceTypes: ["t3.medium"]))
        #expect(legacy.readiness == .running)
        #expect(legacy.deadline == 45)
    }

    @Test("no resume section: no policies, the tracker's defaults")
    func defaults() {
        let (config, problems) = validate("log:\n  level: info\n")
        #expect(problems.isEmpty)
        #expect(config.resume == ResumeSettings())
        #expect(config.resume.policies.isEmpty)
        #expect(config.resume.policy(tags: ["Tier": "web"], instanceType: "m5.large").name == "default")
    }

    struct Mistake: Sendable, CustomTestStringConvertible {
        let label: String
        /// One policy, indented as an item of `  policies:`; it begins on
        /// line 5 of the file.
        let policy: String
        /// The line of the file the error must name.
        let line: Int
        let fragments: [String]
        var testDescription: String { label }
    }

    static let mistakes: [Mistake] = [
        Mistake(label: "unknown key in a policy", policy: """
                    - name: web
                      targets: { tags: { Tier: web } }
                      colour: red
                """, line: 7, fragments: ["resume.policies[0]", "unknown key 'colour'"]),
        Mistake(label: "readiness that is no kind of readiness", policy: """
                    - name: web
                      targets: { tags: { Tier: web } }
                      readiness: sometimes
                """, line: 7, fragments: ["'web'", "readiness", "'sometimes'"]),
        Mistake(label: "readiness mapping with neither tcp nor http", policy: """
                    - name: web
                      targets: { tags: { Tier: web } }
                      readiness: { udp: 53 }
                """, line: 7, fragments: ["'web'", "readiness", "udp"]),
        Mistake(label: "tcp port out of range", policy: """
                    - name: web
                      targets: { tags: { Tier: web } }
                      readiness: { tcp: 70000 }
                """, line: 7, fragments: ["'web'", "readiness.tcp", "70000"]),
        Mistake(label: "tcp port that is not a number", policy: """
                    - name: web
                      targets: { tags: { Tier: web } }
                      readiness:
                        tcp: https
                """, line: 8, fragments: ["'web'", "readiness.tcp", "'https'"]),
        Mistake(label: "http URL without a scheme", policy: """
                    - name: api
                      targets: { tags: { Tier: api } }
                      readiness:
                        http: "{ip}:8080/healthz"
                """, line: 8, fragments: ["'api'", "readiness.http", "http://", "{ip}:8080/healthz"]),
        Mistake(label: "http status out of range", policy: """
                    - name: api
                      targets: { tags: { Tier: api } }
                      readiness:
                        http: "http://{ip}/healthz"
                        status: 99
                """, line: 9, fragments: ["'api'", "readiness.status"]),
        Mistake(label: "p50 above p95", policy: """
                    - name: web
                      targets: { tags: { Tier: web } }
                      objectives: { p50: 60s, p95: 30s }
                """, line: 7, fragments: ["'web'", "objectives.p50", "p95"]),
        Mistake(label: "max beyond the deadline", policy: """
                    - name: web
                      targets: { tags: { Tier: web } }
                      objectives: { max: 10m }
                      deadline: 5m
                """, line: 7, fragments: ["'web'", "objectives.max", "deadline", "600", "300"]),
        Mistake(label: "max below p50", policy: """
                    - name: web
                      targets: { tags: { Tier: web } }
                      objectives: { p50: 60s, max: 30s }
                """, line: 7, fragments: ["'web'", "objectives.max"]),
        Mistake(label: "an objective that is not a duration", policy: """
                    - name: web
                      targets: { tags: { Tier: web } }
                      objectives: { p95: soon }
                """, line: 7, fragments: ["'web'", "objectives.p95", "'soon'"]),
        Mistake(label: "a window under a minute", policy: """
                    - name: web
                      targets: { tags: { Tier: web } }
                      window: 30s
                """, line: 7, fragments: ["'web'", "window"]),
        Mistake(label: "missing targets", policy: """
                    - name: web
                      readiness: running
                """, line: 5, fragments: ["'web'", "targets"]),
        Mistake(label: "missing name", policy: """
                    - targets: { tags: { Tier: web } }
                """, line: 5, fragments: ["resume.policies[0]", "name"]),
        Mistake(label: "a name with a space", policy: """
                    - name: web tier
                      targets: { tags: { Tier: web } }
                """, line: 5, fragments: ["resume.policies[0].name", "'web tier'"]),
    ]

    @Test("each kind of mistake: an error naming the file, the line and the key", arguments: mistakes)
    func mistake(_ mistake: Mistake) throws {
        let text = "log:\n  level: info\nresume:\n  policies:\n" + mistake.policy + "\n"
        let (_, problems) = validate(text)
        try #require(problems.count == 1, "\(problems.map(\.description))")
        let problem = problems[0]
        #expect(problem.file == Self.file)
        #expect(problem.line == mistake.line, "\(problem.description)")
        for fragment in mistake.fragments {
            #expect(problem.message.contains(fragment), "'\(fragment)' not in: \(problem.message)")
        }
        #expect(problem.description.hasPrefix("\(Self.file):\(mistake.line): "))
    }

    @Test("a policy name used twice: an error on the second, naming the line of the first")
    func duplicateNames() throws {
        let text = """
            resume:
              policies:
                - name: web
                  targets: { tags: { Tier: web } }
                - name: db
                  targets: { tags: { Tier: db } }
                - name: web
                  targets: { tags: { Tier: web2 } }
            """
        let (config, problems) = validate(text)
        try #require(problems.count == 1, "\(problems.map(\.description))")
        #expect(problems[0].file == Self.file)
        #expect(problems[0].line == 7)
        #expect(problems[0].message.contains("'web'"))
        #expect(problems[0].message.contains("twice"))
        #expect(problems[0].message.contains("line 3"))
        #expect(config.resume.policies.map(\.name) == ["web", "db"], "the second 'web' is dropped")
    }

    @Test("a policy missing its targets: that one error, not also 'can never match' for every policy after it")
    func missingTargetsDoesNotCascade() {
        let text = """
            resume:
              policies:
                - name: web
                  readiness: running
                - name: db
                  targets: { tags: { Tier: db } }
            """
        let (_, problems) = validate(text)
        #expect(problems.map(\.line) == [3], "\(problems.map(\.description))")
    }

    @Test("several mistakes in one section: all reported, in line order")
    func severalMistakes() {
        let text = """
            resume:
              pollInterval: 10ms
              describeRate: 1000
              bogus: 1
              policies:
                - name: web
                  targets: { tags: { Tier: web } }
                  readiness: { tcp: 0 }
                - name: api
                  readiness: { http: "ftp://{ip}/" }
            """
        let (_, problems) = validate(text)
        #expect(problems.map(\.line) == [2, 3, 4, 8, 9, 10], "\(problems.map(\.description))")
        #expect(problems.allSatisfy { $0.file == Self.file })
        #expect(problems.first?.message.contains("resume.pollInterval") == true)
        #expect(problems.dropFirst().first?.message.contains("resume.describeRate") == true)
        #expect(problems.dropFirst(2).first?.message.contains("bogus") == true)
    }

    // MARK: Overlaps

    @Test("two overlapping policies: a warning naming both and the winner, on the later one's line")
    func ambiguous() throws {
        let text = """
            resume:
              policies:
                - name: web
                  targets: { tags: { Tier: web } }
                - name: large
                  targets: { instanceTypes: [m5.large] }
            """
        let (config, problems) = validate(text)
        #expect(problems.isEmpty, "\(problems.map(\.description))")
        try #require(config.warnings.count == 1, "\(config.warnings.map(\.description))")
        let warning = config.warnings[0]
        #expect(warning.file == Self.file)
        #expect(warning.line == 5)
        #expect(warning.message.contains("'web'"))
        #expect(warning.message.contains("'large'"))
        #expect(warning.message.contains("'web' wins"))
        #expect(warning.message.contains("Tier=web"), "an example instance that matches both")
        // And so it is: the first match wins.
        #expect(config.resume.policy(tags: ["Tier": "web"], instanceType: "m5.large").name == "web")
        #expect(config.resume.policy(tags: ["Tier": "db"], instanceType: "m5.large").name == "large")
        #expect(config.resume.policy(tags: ["Tier": "web"], instanceType: "c5.large").name == "web")
    }

    @Test("overlapping tags: a warning whose example carries both policies' tags")
    func ambiguousTags() throws {
        let text = """
            resume:
              policies:
                - name: prod
                  targets: { tags: { Env: prod } }
                - name: web
                  targets: { tags: { Tier: web } }
            """
        let (config, problems) = validate(text)
        #expect(problems.isEmpty)
        try #require(config.warnings.count == 1)
        #expect(config.warnings[0].message.contains("Env=prod, Tier=web"), "\(config.warnings[0].message)")
        #expect(config.warnings[0].message.contains("'prod' wins"))
    }

    struct Covered: Sendable, CustomTestStringConvertible {
        let label: String
        let earlier: String
        let later: String
        var testDescription: String { label }
    }

    static let covered: [Covered] = [
        Covered(label: "a catch-all first", earlier: "{}", later: "{ tags: { Tier: web } }"),
        Covered(label: "fewer tags first", earlier: "{ tags: { Tier: web } }", later: "{ tags: { Tier: web, Env: prod } }"),
        Covered(label: "the same targets", earlier: "{ tags: { Tier: web } }", later: "{ tags: { Tier: web } }"),
        Covered(label: "more types first", earlier: "{ instanceTypes: [m5.large, m5.xlarge] }",
                later: "{ tags: { Tier: web }, instanceTypes: [m5.large] }"),
    ]

    @Test("a policy an earlier one covers entirely: an error, it can never match", arguments: covered)
    func neverMatches(_ covered: Covered) throws {
        let text = """
            resume:
              policies:
                - name: first
                  targets: \(covered.earlier)
                - name: second
                  targets: \(covered.later)
            """
        let (config, problems) = validate(text)
        try #require(problems.count == 1, "\(problems.map(\.description))")
        #expect(problems[0].file == Self.file)
        #expect(problems[0].line == 5)
        #expect(problems[0].message.contains("'second' can never match"))
        #expect(problems[0].message.contains("'first'"))
        #expect(config.warnings.isEmpty, "an error, not also a warning: \(config.warnings.map(\.description))")
    }

    struct Disjoint: Sendable, CustomTestStringConvertible {
        let label: String
        let a: String
        let b: String
        var testDescription: String { label }
    }

    static let disjoint: [Disjoint] = [
        Disjoint(label: "Tier=web vs Tier=db", a: "{ tags: { Tier: web } }", b: "{ tags: { Tier: db } }"),
        Disjoint(label: "different types", a: "{ instanceTypes: [m5.large] }", b: "{ instanceTypes: [c5.large, c5.xlarge] }"),
        Disjoint(label: "a shared tag, another in conflict", a: "{ tags: { Env: prod, Tier: web } }",
                 b: "{ tags: { Env: prod, Tier: db } }"),
    ]

    @Test("disjoint policies: no warning, no error", arguments: disjoint)
    func disjointPolicies(_ pair: Disjoint) {
        let text = """
            resume:
              policies:
                - name: a
                  targets: \(pair.a)
                - name: b
                  targets: \(pair.b)
            """
        let (config, problems) = validate(text)
        #expect(problems.isEmpty, "\(problems.map(\.description))")
        #expect(config.warnings.isEmpty, "\(config.warnings.map(\.description))")
    }

    // MARK: Matching

    @Test("first match wins; tags and types must all match; unmatched instances fall back to 'default'")
    func firstMatch() {
        var settings = ResumeSettings()
        settings.policies = [
            policy("web-prod", tags: ["Tier": "web", "Env": "prod"]),
            policy("web", tags: ["Tier": "web"], readiness: .tcp(port: 443)),
            policy("big", types: ["m5.4xlarge", "r5.4xlarge"], readiness: .running),
        ]
        #expect(settings.policy(tags: ["Tier": "web", "Env": "prod", "Name": "a"], instanceType: "m5.large").name == "web-prod")
        #expect(settings.policy(tags: ["Tier": "web", "Env": "dev"], instanceType: "m5.large").name == "web")
        #expect(settings.policy(tags: ["Tier": "web"], instanceType: "m5.4xlarge").name == "web", "earlier than 'big'")
        #expect(settings.policy(tags: ["Tier": "db"], instanceType: "r5.4xlarge").name == "big")
        #expect(settings.policy(tags: ["tier": "web"], instanceType: "m5.large").name == "default", "tag keys are case-sensitive")
        let fallback = settings.policy(tags: [:], instanceType: "t3.micro")
        #expect(fallback.name == "default")
        #expect(fallback.readiness == .statusOK)
        #expect(fallback == ResumePolicy.fallback)
        #expect(settings.policy(named: "default") == ResumePolicy.fallback)
        #expect(settings.policy(named: "web")?.readiness == .tcp(port: 443))
        #expect(settings.policy(named: "nope") == nil)
    }

    @Test("a configured catch-all named 'default' replaces the fallback")
    func configuredDefault() {
        var settings = ResumeSettings()
        settings.policies = [policy("web", tags: ["Tier": "web"]), policy("default", readiness: .running, deadline: 90)]
        #expect(settings.policy(tags: ["Tier": "db"], instanceType: "m5.large").readiness == .running)
        #expect(settings.policy(named: "default")?.deadline == 90)
    }

    @Test("an HTTP probe URL with a user and password: read as given, shown without them")
    func probeCredentialsNotShown() throws {
        let (config, problems) = validate("""
            resume:
              policies:
                - name: api
                  targets: { tags: { Tier: api } }
                  readiness: { http: "http://probe:s3cret@{ip}:8080/healthz?full=1" }
            """)
        #expect(problems.isEmpty, "\(problems)")
        let readiness = try #require(config.resume.policies.first?.readiness)
        #expect(readiness == .http(url: "http://probe:s3cret@{ip}:8080/healthz?full=1", status: 200))
        #expect(readiness.description == "http http://***@{ip}:8080/healthz?full=1")
        // Without user information the URL is shown as it is.
        #expect(Readiness.http(url: "http://{ip}:8080/a@b", status: 503).description == "http http://{ip}:8080/a@b (503)")
    }
}
