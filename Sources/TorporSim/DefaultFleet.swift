/// The default fleet: the same text as Config/sim-fleet.yaml (a test keeps
/// the two identical), embedded so that `torpor sim` and the demo need no
/// file at all.
public enum DefaultFleet {
    public static let name = "Config/sim-fleet.yaml (embedded)"

    public static func spec() -> FleetSpec {
        // The embedded text is checked by the tests; it always parses.
        try! FleetSpec.parse(yaml, file: name)
    }

    public static let yaml = #"""
# The fleet simulator's default fleet (`torpor sim` without --fleet, and the demo).
#
# A fleet file describes groups of instances and how EC2 treats them. Every key is
# optional unless marked; an unknown key is an error (typos never pass silently).
#
#   seed                 all random draws (ids, who is spot, every duration) follow it
#   region               the region requests must be signed for
#   credentials          access keys the simulator accepts (with --auth on)
#   hibernateReadyAfter  how soon after launch EC2 allows hibernation
#   groups:              (required) each with
#     name, count        (required)
#     instanceType, memoryGiB, zones (round-robin), state (running|stopped|hibernated)
#     tags               a mapping; torpor:protect: "true" marks protected instances
#     hibernationConfigured, spot, oneTimeSpot   shares of the group, 0 to 1
#     autoScalingGroup   sets the aws:autoscaling:groupName tag
#     rootDeviceType     ebs (default) or instance-store
#     probePort          a TCP port that opens on the instance's private address
#                        (127.x.y.z) when it is reachable, and closes when it stops
#     timings            median/p95 of each transition (durations: 500ms, 30s, 2m, 1h):
#                        stop, hibernate (+ hibernatePerGiB per GiB of memory),
#                        coldBoot, resume (from hibernation), statusOk (after running),
#                        reachable (after running, for probePort)
#   spotPrices:          per instanceType/zone/product: steps (at, price) or a
#                        randomWalk (start, volatility, every, floor)
#   faults:              errorRate (500/503), resetRate (connection closed), lostReplyRate
#                        (carried out, then the connection closed: the answer is lost), latency,
#                        noCapacity (instanceType/zone pairs), startFailureRate
#                        (a start that goes pending -> stopped, as a missing KMS grant does)

seed: 42
region: us-east-1
credentials:
  - accessKeyId: AKIDTORPORSIMULATOR
    secretAccessKey: torpor-simulator-secret-key
hibernateReadyAfter: 5m

groups:
  - name: web
    count: 120
    instanceType: m5.large
    memoryGiB: 8
    zones: [us-east-1a, us-east-1b, us-east-1c]
    tags: { Env: dev, Tier: web, Team: storefront }
    hibernationConfigured: 0.9
    probePort: 8080
    timings:
      stop: { median: 30s, p95: 60s }
      hibernate: { median: 35s, p95: 80s }
      hibernatePerGiB: 2s
      coldBoot: { median: 50s, p95: 110s }
      resume: { median: 14s, p95: 30s }
      statusOk: { median: 45s, p95: 120s }
      reachable: { median: 5s, p95: 15s }

  - name: workers
    count: 80
    instanceType: c5.xlarge
    memoryGiB: 8
    zones: [us-east-1a, us-east-1b]
    tags: { Env: dev, Tier: worker }
    hibernationConfigured: 0.75
    spot: 0.1
    oneTimeSpot: 0.05

  - name: batch
    count: 20
    instanceType: m5.xlarge
    memoryGiB: 16
    tags: { Env: dev, Tier: batch }
    autoScalingGroup: batch-workers

  - name: databases
    count: 10
    instanceType: r5.large
    memoryGiB: 16
    tags: { Env: dev, Tier: db, "torpor:protect": "true" }

  - name: ci-runners
    count: 20
    instanceType: t3.large
    memoryGiB: 8
    state: stopped
    tags: { Env: dev, Tier: ci }

  - name: prod-web
    count: 50
    instanceType: m5.large
    tags: { Env: prod, Tier: web }

spotPrices:
  - instanceType: c5.xlarge
    zone: us-east-1a
    randomWalk: { start: 0.068, volatility: 0.04, every: 5m }
  - instanceType: m5.large
    zone: us-east-1a
    steps:
      - { at: 0s, price: 0.035 }
      - { at: 2h, price: 0.052 }

faults:
  errorRate: 0
"""#
}
