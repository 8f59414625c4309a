import Foundation

/// The AWS CLI's shared files: `~/.aws/credentials` and `~/.aws/config`
/// (or `AWS_SHARED_CREDENTIALS_FILE` and `AWS_CONFIG_FILE`).
///
/// Both are INI files. In the config file a profile's section is
/// `[profile NAME]` (but `[default]`); in the credentials file it is `[NAME]`.
/// Values of one profile merge, the credentials file winning.
public struct SharedConfigFiles: Sendable {
    public let credentialsPath: String
    public let configPath: String
    public let credentialsSections: [String: [String: String]]
    public let configSections: [String: [String: String]]

    public struct ParseError: Error, Sendable, CustomStringConvertible {
        public let path: String
        public let line: Int
        public let reason: String
        public var description: String { "\(path):\(line): \(reason)" }
    }

    /// Reads both files; a missing file is empty, a malformed one an error
    /// that names the file and line.
    public static func load(environment: [String: String]) throws(ParseError) -> SharedConfigFiles {
        let home = environment["HOME"] ?? NSHomeDirectory()
        let credentialsPath = expand(environment["AWS_SHARED_CREDENTIALS_FILE"] ?? "~/.aws/credentials", home: home)
        let configPath = expand(environment["AWS_CONFIG_FILE"] ?? "~/.aws/config", home: home)
        return SharedConfigFiles(
            credentialsPath: credentialsPath, configPath: configPath,
            credentialsSections: try parseFile(credentialsPath, isConfig: false),
            configSections: try parseFile(configPath, isConfig: true))
    }

    public init(credentialsPath: String, configPath: String,
                credentialsSections: [String: [String: String]], configSections: [String: [String: String]]) {
        self.credentialsPath = credentialsPath
        self.configPath = configPath
        self.credentialsSections = credentialsSections
        self.configSections = configSections
    }

    /// A profile's settings from both files; nil when neither names it.
    public func profile(_ name: String) -> [String: String]? {
        let fromConfig = configSections[name]
        let fromCredentials = credentialsSections[name]
        if fromConfig == nil && fromCredentials == nil { return nil }
        return (fromConfig ?? [:]).merging(fromCredentials ?? [:]) { _, credentials in credentials }
    }

    static func expand(_ path: String, home: String) -> String {
        path.hasPrefix("~/") ? home + path.dropFirst() : path
    }

    static func parseFile(_ path: String, isConfig: Bool) throws(ParseError) -> [String: [String: String]] {
        guard FileManager.default.fileExists(atPath: path) else { return [:] }
        guard let data = FileManager.default.contents(atPath: path) else {
            throw ParseError(path: path, line: 0, reason: "cannot be read")
        }
        return try parse(String(decoding: data, as: UTF8.self), path: path, isConfig: isConfig)
    }

    /// The INI dialect botocore reads: `#` and `;` comment lines, `key = value`,
    /// indented lines continuing a value (nested settings, which we keep as
    /// text), section names trimmed.
    static func parse(_ text: String, path: String, isConfig: Bool) throws(ParseError) -> [String: [String: String]] {
        var sections: [String: [String: String]] = [:]
        var current: String?
        var lastKey: String?
        // Split on the byte, not the Character: "\r\n" is one Character in
        // Swift, so a file saved with Windows line endings would be one line.
        let lines = text.utf8.split(separator: UInt8(ascii: "\n"), omittingEmptySubsequences: false)
        for (offset, rawBytes) in lines.enumerated() {
            let lineNumber = offset + 1
            let bytes = rawBytes.last == UInt8(ascii: "\r") ? rawBytes.dropLast() : rawBytes[...]
            let line = Substring(String(decoding: bytes, as: UTF8.self))
            let trimmed = line.trimmingCharacters(in: .whitespaces)
            if trimmed.isEmpty || trimmed.hasPrefix("#") || trimmed.hasPrefix(";") { continue }
            if trimmed.hasPrefix("[") {
                guard trimmed.hasSuffix("]") else {
                    throw ParseError(path: path, line: lineNumber, reason: "section header '\(trimmed)' has no closing ']'")
                }
                var name = trimmed.dropFirst().dropLast().trimmingCharacters(in: .whitespaces)
                if isConfig && name.hasPrefix("profile ") {
                    name = name.dropFirst("profile ".count).trimmingCharacters(in: .whitespaces)
                }
                current = name
                lastKey = nil
                sections[name, default: [:]] = sections[name] ?? [:]
                continue
            }
            guard let section = current else {
                throw ParseError(path: path, line: lineNumber, reason: "setting outside any [section]")
            }
            if line.first == " " || line.first == "\t", let key = lastKey {
                // A nested setting under the previous key (s3 = ..., say).
                sections[section]?[key, default: ""] += "\n" + trimmed
                continue
            }
            guard let equals = trimmed.firstIndex(of: "=") else {
                throw ParseError(path: path, line: lineNumber, reason: "expected 'key = value'")
            }
            let key = trimmed[..<equals].trimmingCharacters(in: .whitespaces).lowercased()
            let value = trimmed[trimmed.index(after: equals)...].trimmingCharacters(in: .whitespaces)
            guard !key.isEmpty else {
                throw ParseError(path: path, line: lineNumber, reason: "empty key")
            }
            sections[section]?[key] = value
            lastKey = key
        }
        return sections
    }
}
