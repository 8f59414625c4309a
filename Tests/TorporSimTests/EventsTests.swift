import Foundation
import Testing
@testable import TorporSim
import TorporTestSupport

@Suite("Ground truth: the event log")
struct EventsTests {
    /// A busy scenario on a manual clock: hibernations, stops, starts,
    /// interruptions, failed starts, probes; returns the engine and the
    /// request ids of the calls that changed something, with their ids.
    func busyScenario() throws -> (SimEngine, [(requestID: String, ids: [String], to: String)]) {
        let clock = ManualClock(start: t0)
        let spec = makeSpec([
            makeGroup("web", 40) { $0.probePort = 8080; $0.hibernationConfigured = 0.75 },
            makeGroup("workers", 30) { $0.spot = 0.5 },
            makeGroup("ci", 20) { $0.initialState = .stopped },
            makeGroup("hib", 10) { $0.initialState = .hibernated; $0.probePort = 9000 },
        ])
        let engine = SimEngine(spec: spec, clock: clock, throttle: .off)
        let all = engine.instances()
        func ids(_ group: String) -> [String] { all.filter { $0.group == group }.map(\.id) }
        var calls: [(String, [String], String)] = []
        func call(_ action: String, _ ids: [String], _ extra: [String: String] = [:], to: String) throws {
            let reply = try engineCall(engine, action, list("InstanceId", ids) + extra)
            #expect(reply.status == 200, "\(action): \(reply.body)")
            calls.append((try #require(reply.requestID), ids, to))
        }
        let webHibernate = try engineCall(engine, "DescribeInstances", filters([("tag:Name", ["web-*"]), ("hibernation-options.configured", ["true"])]))
            .instanceIDs
        #expect(webHibernate.count == 30)

        try call("StopInstances", Array(webHibernate.prefix(20)), ["Hibernate": "true"], to: "stopping")
        try call("StopInstances", Array(ids("workers").prefix(10)), to: "stopping")
        clock.advance(by: 30)
        try call("StartInstances", Array(ids("ci").prefix(10)), to: "pending")
        try call("StartInstances", ids("hib"), to: "pending")
        clock.advance(by: 20)
        try engine.interrupt(Array(ids("workers").suffix(5)), behavior: "stop")
        try engine.interrupt(Array(ids("workers").dropLast(5).suffix(3)), behavior: "terminate")
        clock.advance(by: 1000)
        try call("StartInstances", Array(webHibernate.prefix(20)), to: "pending")
        try call("StopInstances", Array(ids("ci").prefix(5)), to: "stopping")
        clock.advance(by: 1000)
        var faults = engine.faults
        faults.startFailureRate = 1
        engine.setFaults(faults)
        try call("StartInstances", Array(ids("workers").prefix(10)), to: "pending")
        clock.advance(by: 5000)
        // Stops and restarts of instances that had become running again.
        try call("StopInstances", Array(ids("hib").prefix(4)), to: "stopping")
        clock.advance(by: 5000)
        return (engine, calls.map { (requestID: $0.0, ids: $0.1, to: $0.2) })
    }

    @Test("every event's from is the previous to of the same instance and kind; the first from is the initial value")
    func chained() throws {
        let (engine, _) = try busyScenario()
        let events = engine.events()
        #expect(events.count > 300)
        let initial = Dictionary(uniqueKeysWithValues: engine.instances().map { ($0.id, $0) })
        var last: [String: String] = [:]
        for event in events {
            let key = "\(event.instanceID) \(event.kind)"
            if let previous = last[key] {
                #expect(event.from == previous, "\(event)")
            } else {
                #expect(initial[event.instanceID] != nil)
                switch event.kind {
                case .state:
                    #expect(["running", "stopped"].contains(event.from), "\(event)")
                case .status:
                    #expect(["ok", "not-applicable"].contains(event.from), "\(event)")
                case .reachability:
                    #expect(event.from == "closed", "\(event)")
                }
            }
            #expect(event.from != event.to, "\(event)")
            last[key] = event.to
        }
        // The last state event of each instance is its state now.
        for (id, instance) in initial {
            if let to = last["\(id) state"] { #expect(to == instance.state.rawValue, "\(id)") }
        }
    }

    @Test("events come in non-decreasing time, numbered in order")
    func ordered() throws {
        let (engine, _) = try busyScenario()
        let events = engine.events()
        for (index, event) in events.enumerated() {
            #expect(event.sequence == index)
            if index > 0 { #expect(event.time >= events[index - 1].time, "\(event) after \(events[index - 1])") }
        }
        #expect(events.first?.time == t0)
        #expect(events.last!.time > t0 + 1000)
        // since= skips the first ones; instance= keeps one instance's.
        let id = events[10].instanceID
        #expect(engine.events(since: 10).first == events[10])
        #expect(engine.events(instanceID: id) == events.filter { $0.instanceID == id })
    }

    @Test("the events a call causes carry its request id")
    func causes() throws {
        let (engine, calls) = try busyScenario()
        let events = engine.events()
        for call in calls {
            let caused = events.filter { $0.cause == call.requestID }
            let stateEvents = caused.filter { $0.kind == .state }
            #expect(Set(stateEvents.map(\.instanceID)) == Set(call.ids), "\(call.requestID)")
            #expect(stateEvents.allSatisfy { $0.to == call.to }, "\(call.requestID)")
            // All of one call's events happen at one instant.
            #expect(Set(caused.map(\.time)).count == 1)
        }
        // Request ids are distinct, so no event is claimed by two calls.
        #expect(Set(calls.map(\.requestID)).count == calls.count)
        // Everything else was scheduled, initial, an interruption or an injected fault.
        let known = Set(calls.map(\.requestID)).union(["scheduled", "initial", "interruption", "injected-fault"])
        #expect(events.allSatisfy { known.contains($0.cause) })
        #expect(events.contains { $0.cause == "injected-fault" })
        #expect(events.contains { $0.cause == "interruption" && $0.to == "shutting-down" })
        // Probe ports: open at start for running web and none for stopped hib; closed on stop, open again after resume.
        #expect(events.filter { $0.kind == .reachability && $0.cause == "initial" }.count == 40)
    }

    @Test("interrupting a pending instance chains its status events")
    func interruptPending() throws {
        let clock = ManualClock(start: t0)
        let engine = SimEngine(spec: makeSpec([makeGroup("g", 1) { $0.spot = 1; $0.initialState = .stopped }]), clock: clock, throttle: .off)
        let id = engine.instances()[0].id
        #expect(try engineCall(engine, "StartInstances", list("InstanceId", [id])).status == 200)
        #expect(engine.instances()[0].state == .pending)
        try engine.interrupt([id], behavior: "stop")
        let status = engine.events().filter { $0.kind == .status }
        // The instance was stopped, then pending: its status was not-applicable throughout.
        var last = "not-applicable"
        for event in status {
            #expect(event.from == last, "\(event)")
            last = event.to
        }
    }
}
