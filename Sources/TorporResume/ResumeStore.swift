import Foundation
import GRDB
public import TorporQueue
import TorporReports

/// Resume measurements, in the queue's SQLite file: they survive restarts,
/// and a tracker that dies leaves its in-flight resumes for the next one.
///
/// Ownership: a tracker owns the rows it follows and stamps `heartbeatAt`
/// every round. Another tracker adopts rows whose heartbeat is stale, or
/// that were released (a tracker that stops cleanly releases its rows).
public struct ResumeStore: Sendable {
    let pool: DatabasePool
    public let path: String

    /// The store beside `queue`, created on first use.
    public init(queue: SQLiteJobQueue) throws(QueueError) {
        pool = queue.database
        path = queue.path
        do {
            try SQLiteJobQueue.migrate(Self.migrator, pool)
        } catch {
            throw SQLiteJobQueue.storageError(error, path: path, doing: "open the resume measurements")
        }
    }

    static var migrator: DatabaseMigrator {
        var migrator = DatabaseMigrator()
        // Identifiers are shared with the queue's own migrator table: keep
        // them distinct.
        migrator.registerMigration("resume-v1") { db in
            try db.execute(sql: """
                CREATE TABLE resume (
                    id INTEGER PRIMARY KEY AUTOINCREMENT,
                    instanceID TEXT NOT NULL,
                    policy TEXT NOT NULL,
                    readiness TEXT NOT NULL,
                    readinessPhase TEXT NOT NULL,
                    probeKind TEXT,
                    probePort INTEGER,
                    probeURL TEXT,
                    probeStatus INTEGER,
                    instanceType TEXT NOT NULL,
                    zone TEXT NOT NULL,
                    privateIP TEXT,
                    mode TEXT NOT NULL,
                    jobID TEXT,
                    acceptedAt REAL NOT NULL,
                    acceptedError REAL NOT NULL,
                    runningAt REAL, runningError REAL,
                    statusOkAt REAL, statusOkError REAL,
                    probeAt REAL, probeError REAL,
                    deadline REAL NOT NULL,
                    state TEXT NOT NULL,
                    lastState TEXT,
                    detail TEXT,
                    checkedAt REAL NOT NULL,
                    owner TEXT,
                    heartbeatAt REAL
                );
                CREATE INDEX resume_tracking ON resume(owner, heartbeatAt) WHERE state = 'tracking';
                CREATE INDEX resume_accepted ON resume(acceptedAt);
                """)
        }
        return migrator
    }

    /// A write runs to its end even when the task asking for it is
    /// cancelled (a job whose lease ran out, a worker shutting down): GRDB
    /// would give up at once, and a start just accepted, or a round's
    /// measurements, would be lost.
    func write<T: Sendable>(_ doing: String, _ body: @escaping @Sendable (Database) throws -> T) async throws(QueueError) -> T {
        let pool = self.pool
        let writing = Task { try await pool.write(body) }
        do { return try await writing.value } catch { throw SQLiteJobQueue.storageError(error, path: path, doing: doing) }
    }

    func read<T: Sendable>(_ doing: String, _ body: @escaping @Sendable (Database) throws -> T) async throws(QueueError) -> T {
        do { return try await pool.read(body) } catch { throw SQLiteJobQueue.storageError(error, path: path, doing: doing) }
    }

    // MARK: Writing

    /// Stores new resumes owned by `owner`; returns them with their ids.
    public func insert(_ records: [ResumeRecord], owner: String, now: Double) async throws(QueueError) -> [ResumeRecord] {
        try await write("record resumes") { db in
            let statement = try db.cachedStatement(sql: """
                INSERT INTO resume (instanceID, policy, readiness, readinessPhase, probeKind, probePort, probeURL, probeStatus,
                    instanceType, zone, privateIP, mode, jobID, acceptedAt, acceptedError, deadline, state, checkedAt, owner, heartbeatAt)
                VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
                """)
            return try records.map { record in
                var kind: String?, port: Int?, url: String?, status: Int?
                switch record.probe {
                case .tcp(let p)?: kind = "tcp"; port = p
                case .http(let u, let s)?: kind = "http"; url = u; status = s
                case nil: break
                }
                try statement.execute(arguments: [
                    record.instanceID, record.policy, record.readiness, record.readinessPhase.rawValue, kind, port, url, status,
                    record.instanceType, record.zone, record.privateIP, record.mode.rawValue, record.jobID,
                    record.accepted.at, record.accepted.error, record.deadline, record.state.rawValue, record.checkedAt, owner, now,
                ])
                var stored = record
                stored.id = db.lastInsertedRowID
                return stored
            }
        }
    }

    /// Saves what a round learnt, and stamps the owner's heartbeat. Only
    /// rows the owner holds are written (a settled row is no one's); returns
    /// the ids of the others: taken over by another tracker while this one
    /// was silent (and perhaps settled by it since), or released.
    @discardableResult
    public func update(_ records: [ResumeRecord], owner: String, now: Double) async throws(QueueError) -> [Int64] {
        try await write("save resume measurements") { db in
            let statement = try db.cachedStatement(sql: """
                UPDATE resume SET runningAt = ?, runningError = ?, statusOkAt = ?, statusOkError = ?, probeAt = ?, probeError = ?,
                    state = ?, lastState = ?, detail = ?, checkedAt = ?, privateIP = ?,
                    owner = CASE WHEN ? = 'tracking' THEN owner ELSE NULL END
                WHERE id = ? AND owner = ?
                """)
            var lost: [Int64] = []
            for record in records {
                guard let id = record.id else { continue }
                try statement.execute(arguments: [
                    record.running?.at, record.running?.error, record.statusOK?.at, record.statusOK?.error,
                    record.probeOK?.at, record.probeOK?.error, record.state.rawValue, record.lastState, record.detail,
                    record.checkedAt, record.privateIP, record.state.rawValue, id, owner,
                ])
                if db.changesCount == 0 { lost.append(id) }
            }
            try db.cachedStatement(sql: Self.stampHeartbeat).execute(arguments: [now, owner])
            return lost
        }
    }

    /// Tells other trackers that `owner` is alive and following its rows.
    public func heartbeat(owner: String, now: Double) async throws(QueueError) {
        try await write("stamp the resume tracker's heartbeat") { db in
            try db.cachedStatement(sql: Self.stampHeartbeat).execute(arguments: [now, owner])
        }
    }

    static let stampHeartbeat = "UPDATE resume SET heartbeatAt = ? WHERE owner = ? AND state = 'tracking'"

    /// Takes over in-flight resumes: the owner's own, released ones, those
    /// whose tracker has not been heard of for `staleAfter` seconds, and, at
    /// once, those of the owners in `gone` (trackers known to have ended,
    /// whatever their heartbeat says).
    public func adopt(owner: String, now: Double, staleAfter: Double, gone: [String] = []) async throws(QueueError) -> [ResumeRecord] {
        try await write("pick up in-flight resumes") { db in
            let goneList = gone.isEmpty ? "" : " OR owner IN (" + Array(repeating: "?", count: gone.count).joined(separator: ", ") + ")"
            var arguments: [(any DatabaseValueConvertible)?] = [owner, now, owner, now - staleAfter]
            arguments += gone.map { $0 }
            try db.execute(sql: """
                UPDATE resume SET owner = ?, heartbeatAt = ?
                WHERE state = 'tracking' AND (owner IS NULL OR owner = ? OR heartbeatAt < ?\(goneList))
                """, arguments: StatementArguments(arguments))
            return try Row.fetchAll(db, sql: "SELECT * FROM resume WHERE state = 'tracking' AND owner = ? ORDER BY id", arguments: [owner])
                .map(Self.record)
        }
    }

    /// The trackers that own in-flight rows.
    public func owners() async throws(QueueError) -> [String] {
        try await read("read the owners of in-flight resumes") { db in
            try String.fetchAll(db, sql: "SELECT DISTINCT owner FROM resume WHERE state = 'tracking' AND owner IS NOT NULL ORDER BY owner")
        }
    }

    /// Leaves the owner's in-flight resumes for another tracker to adopt at once.
    public func release(owner: String) async throws(QueueError) {
        try await write("release in-flight resumes") { db in
            try db.execute(sql: "UPDATE resume SET owner = NULL WHERE owner = ? AND state = 'tracking'", arguments: [owner])
        }
    }

    // MARK: Reading

    /// Resumes accepted at or after `since`, oldest first; one policy's when
    /// `policy` is given.
    public func records(since: Double, policy: String? = nil) async throws(QueueError) -> [ResumeRecord] {
        try await read("read resume measurements") { db in
            if let policy {
                return try Row.fetchAll(db, sql: "SELECT * FROM resume WHERE acceptedAt >= ? AND policy = ? ORDER BY acceptedAt, id",
                                        arguments: [since, policy]).map(Self.record)
            }
            return try Row.fetchAll(db, sql: "SELECT * FROM resume WHERE acceptedAt >= ? ORDER BY acceptedAt, id", arguments: [since])
                .map(Self.record)
        }
    }

    /// A row as a record. Rows are only ever written by this type, but a
    /// damaged value must not crash a report: unknown enums fall back.
    static func record(_ row: Row) -> ResumeRecord {
        // GRDB's typed subscripts stop the process on a value of the wrong
        // type; a report must survive a damaged row, so every column is read
        // as a raw value and converted, a mismatch reading as missing.
        func value<T: DatabaseValueConvertible>(_ column: String, _: T.Type) -> T? {
            let raw: DatabaseValue = row[column] ?? .null
            return T.fromDatabaseValue(raw)
        }
        func text(_ column: String) -> String? { value(column, String.self) }
        func number(_ column: String) -> Double? { value(column, Double.self) }
        func integer(_ column: String) -> Int? { value(column, Int.self) }
        var probe: ProbeSpec?
        switch text("probeKind") {
        case "tcp": probe = integer("probePort").map { .tcp(port: $0) }
        case "http": probe = text("probeURL").map { .http(url: $0, status: integer("probeStatus") ?? 200) }
        default: probe = nil
        }
        func time(_ at: String, _ error: String) -> PhaseTime? {
            guard let value = number(at) else { return nil }
            return PhaseTime(at: value, error: number(error) ?? 0)
        }
        return ResumeRecord(
            id: value("id", Int64.self), instanceID: text("instanceID") ?? "?", policy: text("policy") ?? "?",
            readiness: text("readiness") ?? "?",
            readinessPhase: ResumePhase(rawValue: text("readinessPhase") ?? "") ?? .statusOk, probe: probe,
            instanceType: text("instanceType") ?? "?", zone: text("zone") ?? "?", privateIP: text("privateIP"),
            mode: ResumeMode(rawValue: text("mode") ?? "") ?? .cold, jobID: text("jobID"),
            accepted: PhaseTime(at: number("acceptedAt") ?? 0, error: number("acceptedError") ?? 0),
            running: time("runningAt", "runningError"), statusOK: time("statusOkAt", "statusOkError"), probeOK: time("probeAt", "probeError"),
            deadline: number("deadline") ?? 0, state: ResumeState(rawValue: text("state") ?? "") ?? .failed,
            lastState: text("lastState"), detail: text("detail"), checkedAt: number("checkedAt") ?? 0)
    }
}
