import Foundation
public import GRDB

/// The embedded queue: one SQLite file in WAL mode, safe for the command
/// line and the worker to use at once. Claims are single UPDATE statements,
/// so two workers never take the same job.
public final class SQLiteJobQueue: JobQueue {
    private let pool: DatabasePool
    public let path: String
    /// The database, for other stores that live beside the queue (resume
    /// measurements): one file to back up, one pool per process.
    public var database: DatabasePool { pool }

    /// Opens (creating if need be) the queue at `path`.
    public init(path: String, busyTimeout: Double = 5) throws(QueueError) {
        self.path = path
        var configuration = Configuration()
        configuration.busyMode = .timeout(busyTimeout)
        configuration.label = "torpor.queue"
        // WAL with synchronous NORMAL: a committed transaction survives any
        // process crash (a killed worker loses nothing); only a power loss
        // can drop the last few. FULL would fsync every claim and complete.
        configuration.prepareDatabase { db in
            try db.execute(sql: "PRAGMA synchronous = NORMAL")
        }
        do {
            let directory = (path as NSString).deletingLastPathComponent
            if !directory.isEmpty { try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true) }
            pool = try Self.open(path: path, configuration: configuration, patience: busyTimeout)
        } catch {
            throw Self.storageError(error, path: path, doing: "open the queue")
        }
    }

    /// Opens the pool and migrates it. Switching a new file to WAL takes a
    /// lock that SQLite does not wait for: two processes creating the file
    /// at once (a worker starting as `torpor enqueue` runs) can get
    /// SQLITE_BUSY at once, whatever the busy timeout. Such an open is tried
    /// again, for up to `patience` seconds.
    static func open(path: String, configuration: Configuration, patience: Double) throws -> DatabasePool {
        let started = ContinuousClock.now
        var pause = 0.02
        while true {
            do {
                let pool = try DatabasePool(path: path, configuration: configuration)
                try migrate(migrator, pool)
                return pool
            } catch let error as DatabaseError
                        where error.resultCode == .SQLITE_BUSY && started.duration(to: .now) + .seconds(pause) < .seconds(patience) {
                Thread.sleep(forTimeInterval: pause)
                pause = min(pause * 2, 0.5)
            }
        }
    }

    /// Runs `migrator` on `pool`. Two processes opening a new file at the
    /// same moment (a worker starting as `torpor enqueue` runs) both find
    /// nothing applied; the second to get the write lock then fails with
    /// "already exists", its transaction rolled back while the first's is
    /// committed. Once more, it finds the migration applied.
    public static func migrate(_ migrator: DatabaseMigrator, _ pool: DatabasePool) throws {
        do {
            try migrator.migrate(pool)
        } catch let error as DatabaseError where error.resultCode == .SQLITE_ERROR && (error.message ?? "").contains("already exists") {
            try migrator.migrate(pool)
        }
    }

    static var migrator: DatabaseMigrator {
        var migrator = DatabaseMigrator()
        migrator.registerMigration("v1") { db in
            try db.execute(sql: """
                CREATE TABLE job (
                    id TEXT PRIMARY KEY NOT NULL,
                    kind TEXT NOT NULL,
                    payload TEXT NOT NULL,
                    payloadVersion INTEGER NOT NULL,
                    idempotencyKey TEXT UNIQUE,
                    priority INTEGER NOT NULL DEFAULT 0,
                    notBefore REAL NOT NULL,
                    attempts INTEGER NOT NULL DEFAULT 0,
                    maxAttempts INTEGER NOT NULL,
                    state TEXT NOT NULL,
                    leaseOwner TEXT,
                    leaseExpiry REAL,
                    createdAt REAL NOT NULL,
                    updatedAt REAL NOT NULL,
                    lastError TEXT,
                    result TEXT
                );
                -- Claims read these in order and stop at the first match.
                CREATE INDEX job_ready ON job(priority DESC, notBefore, createdAt) WHERE state IN ('queued', 'failed');
                CREATE INDEX job_leased ON job(leaseExpiry) WHERE state = 'running';
                CREATE INDEX job_created ON job(createdAt);
                """)
        }
        return migrator
    }

    public static func storageError(_ error: any Error, path: String, doing: String) -> QueueError {
        if let error = error as? QueueError { return error }
        if let error = error as? DatabaseError {
            let what: String
            switch error.resultCode {
            case .SQLITE_BUSY, .SQLITE_LOCKED: what = "the database is locked by another process"
            case .SQLITE_READONLY: what = "the database is read-only"
            case .SQLITE_FULL: what = "the disk is full"
            case .SQLITE_CORRUPT, .SQLITE_NOTADB: what = "the file is not a usable SQLite database"
            case .SQLITE_CANTOPEN: what = "the file cannot be opened"
            default: what = error.message ?? "\(error.resultCode)"
            }
            return QueueError(.storage, "cannot \(doing) (\(path)): \(what)")
        }
        return QueueError(.storage, "cannot \(doing) (\(path)): \(error)")
    }

    private func write<T: Sendable>(_ doing: String, _ body: @escaping @Sendable (Database) throws -> T) async throws(QueueError) -> T {
        do {
            return try await pool.write(body)
        } catch {
            throw Self.storageError(error, path: path, doing: doing)
        }
    }

    private func read<T: Sendable>(_ doing: String, _ body: @escaping @Sendable (Database) throws -> T) async throws(QueueError) -> T {
        do {
            return try await pool.read(body)
        } catch {
            throw Self.storageError(error, path: path, doing: doing)
        }
    }

    static func job(_ row: Row) -> Job {
        Job(id: row["id"], kind: row["kind"], payload: row["payload"], payloadVersion: row["payloadVersion"],
            idempotencyKey: row["idempotencyKey"], priority: row["priority"], notBefore: row["notBefore"],
            attempts: row["attempts"], maxAttempts: row["maxAttempts"],
            state: JobState(rawValue: row["state"]) ?? .dead, leaseOwner: row["leaseOwner"], leaseExpiry: row["leaseExpiry"],
            createdAt: row["createdAt"], updatedAt: row["updatedAt"], lastError: row["lastError"], result: row["result"])
    }

    static func newID() -> String {
        // Sortable by time, unique: milliseconds then random hex.
        let millis = UInt64(Date().timeIntervalSince1970 * 1000)
        return "job-" + String(millis, radix: 36) + "-" + String(UInt64.random(in: 0...UInt64.max) & 0xFFFF_FFFF, radix: 16)
    }

    public func enqueue(_ new: NewJob, now: Double) async throws(QueueError) -> (job: Job, created: Bool) {
        try await write("enqueue a job") { db in
            // One statement in the common case: the insert returns the new
            // row, or nothing when the idempotency key is taken.
            let insert = try db.cachedStatement(sql: """
                INSERT INTO job (id, kind, payload, payloadVersion, idempotencyKey, priority, notBefore, attempts, maxAttempts,
                                 state, createdAt, updatedAt)
                VALUES (?, ?, ?, ?, ?, ?, ?, 0, ?, 'queued', ?, ?)
                ON CONFLICT(idempotencyKey) DO NOTHING
                RETURNING *
                """)
            if let row = try Row.fetchOne(insert, arguments: [Self.newID(), new.kind, new.payload, new.payloadVersion, new.idempotencyKey,
                                                                new.priority, new.notBefore ?? now, new.maxAttempts, now, now]) {
                return (Self.job(row), true)
            }
            let existing = try Row.fetchOne(db.cachedStatement(sql: "SELECT * FROM job WHERE idempotencyKey = ?"),
                                            arguments: [new.idempotencyKey])
            guard let existing else { throw QueueError(.storage, "the job could not be stored") }
            return (Self.job(existing), false)
        }
    }

    public func claim(owner: String, lease: Double, now: Double) async throws(QueueError) -> Job? {
        try await write("claim a job") { db in
            // A job whose workers kept dying has used its attempts: it is
            // dead, not claimed again (a job that crashes its worker would
            // otherwise be retried forever).
            try db.cachedStatement(sql: """
                UPDATE job SET state = 'dead', leaseOwner = NULL, leaseExpiry = NULL, updatedAt = ?,
                    lastError = 'out of attempts: the worker holding it stopped without finishing ' || attempts || ' time(s)'
                WHERE state = 'running' AND leaseExpiry < ? AND attempts >= maxAttempts
                """).execute(arguments: [now, now])
            // A job whose worker died comes first: it has waited longest.
            // Both lookups walk a partial index in order and stop at the first
            // match, so a claim costs the same with ten jobs or a million.
            // The write transaction makes the pick and the update atomic.
            let id = try String.fetchOne(db.cachedStatement(sql: """
                SELECT id FROM job WHERE state = 'running' AND leaseExpiry < ? ORDER BY leaseExpiry LIMIT 1
                """), arguments: [now])
                ?? String.fetchOne(db.cachedStatement(sql: """
                SELECT id FROM job WHERE state IN ('queued', 'failed') AND notBefore <= ?
                ORDER BY priority DESC, notBefore, createdAt LIMIT 1
                """), arguments: [now])
            guard let id else { return nil }
            let row = try Row.fetchOne(db.cachedStatement(sql: """
                UPDATE job SET state = 'running', leaseOwner = ?, leaseExpiry = ?, attempts = attempts + 1, updatedAt = ?
                WHERE id = ?
                RETURNING *
                """), arguments: [owner, now + lease, now, id])
            return row.map(Self.job)
        }
    }

    /// Runs an update that must find the job held by `owner`.
    private func leased(_ doing: String, id: String, owner: String, sql: String, arguments: StatementArguments) async throws(QueueError) {
        let changed = try await write(doing) { db in
            try db.cachedStatement(sql: sql).execute(arguments: arguments)
            return db.changesCount
        }
        if changed == 0 {
            throw QueueError(.leaseLost, "cannot \(doing): job \(id) is not held by \(owner) any more")
        }
    }

    public func renew(id: String, owner: String, lease: Double, now: Double) async throws(QueueError) {
        try await leased("renew the lease", id: id, owner: owner, sql: """
            UPDATE job SET leaseExpiry = ?, updatedAt = ? WHERE id = ? AND state = 'running' AND leaseOwner = ?
            """, arguments: [now + lease, now, id, owner])
    }

    public func complete(id: String, owner: String, result: String, now: Double) async throws(QueueError) {
        try await leased("complete the job", id: id, owner: owner, sql: """
            UPDATE job SET state = 'succeeded', result = ?, leaseOwner = NULL, leaseExpiry = NULL, lastError = NULL, updatedAt = ?
            WHERE id = ? AND state = 'running' AND leaseOwner = ?
            """, arguments: [result, now, id, owner])
    }

    public func fail(id: String, owner: String, error: String, result: String?, retryAt: Double?, now: Double) async throws(QueueError) {
        try await leased("record the failure", id: id, owner: owner, sql: """
            UPDATE job SET
                state = CASE WHEN ? IS NULL OR attempts >= maxAttempts THEN 'dead' ELSE 'failed' END,
                notBefore = COALESCE(?, notBefore), lastError = ?, result = COALESCE(?, result),
                leaseOwner = NULL, leaseExpiry = NULL, updatedAt = ?
            WHERE id = ? AND state = 'running' AND leaseOwner = ?
            """, arguments: [retryAt, retryAt, error, result, now, id, owner])
    }

    public func release(id: String, owner: String, now: Double) async throws(QueueError) {
        try await leased("release the job", id: id, owner: owner, sql: """
            UPDATE job SET state = 'queued', attempts = MAX(0, attempts - 1), leaseOwner = NULL, leaseExpiry = NULL, updatedAt = ?
            WHERE id = ? AND state = 'running' AND leaseOwner = ?
            """, arguments: [now, id, owner])
    }

    /// Folds the write-ahead log into the database file, as a clean
    /// shutdown should leave it.
    public func checkpoint() async throws(QueueError) {
        do {
            _ = try await pool.writeWithoutTransaction { db in try db.checkpoint(.truncate) }
        } catch {
            throw Self.storageError(error, path: path, doing: "checkpoint the queue")
        }
    }

    public func job(id: String) async throws(QueueError) -> Job {
        let job = try await read("read the job") { db in
            try Row.fetchOne(db, sql: "SELECT * FROM job WHERE id = ?", arguments: [id]).map(Self.job)
        }
        guard let job else { throw QueueError(.notFound, "no job \(id)") }
        return job
    }

    public func jobs(state: JobState?, limit: Int) async throws(QueueError) -> [Job] {
        try await read("list jobs") { db in
            let rows: [Row]
            if let state {
                rows = try Row.fetchAll(db, sql: "SELECT * FROM job WHERE state = ? ORDER BY createdAt DESC LIMIT ?",
                                        arguments: [state.rawValue, limit])
            } else {
                rows = try Row.fetchAll(db, sql: "SELECT * FROM job ORDER BY createdAt DESC LIMIT ?", arguments: [limit])
            }
            return rows.map(Self.job)
        }
    }

    public func retry(id: String, now: Double) async throws(QueueError) -> Job {
        let job = try await self.job(id: id)
        guard job.state == .failed || job.state == .dead else {
            throw QueueError(.conflict, "job \(id) is \(job.state.rawValue); only failed or dead jobs can be retried")
        }
        try await write("retry the job") { db in
            try db.execute(sql: """
                UPDATE job SET state = 'queued', attempts = 0, notBefore = ?, leaseOwner = NULL, leaseExpiry = NULL, updatedAt = ?
                WHERE id = ? AND state IN ('failed', 'dead')
                """, arguments: [now, now, id])
        }
        return try await self.job(id: id)
    }

    public func cancel(id: String, now: Double) async throws(QueueError) -> Job {
        let job = try await self.job(id: id)
        guard job.state == .queued || job.state == .failed else {
            throw QueueError(.conflict, "job \(id) is \(job.state.rawValue); only queued or failed jobs can be cancelled")
        }
        let changed = try await write("cancel the job") { db in
            try db.execute(sql: """
                UPDATE job SET state = 'dead', lastError = 'cancelled', updatedAt = ? WHERE id = ? AND state IN ('queued', 'failed')
                """, arguments: [now, id])
            return db.changesCount
        }
        if changed == 0 { throw QueueError(.conflict, "job \(id) was claimed while it was being cancelled") }
        return try await self.job(id: id)
    }
}
