import Foundation
#if canImport(FoundationXML)
import FoundationXML
#endif

/// An element of a parsed XML document: name (namespace prefix dropped),
/// text, and children in order. AWS Query responses are small trees of
/// elements with text leaves, and this is all their decoders need.
public final class XMLNode: Sendable {
    public let name: String
    public let text: String
    public let children: [XMLNode]

    init(name: String, text: String, children: [XMLNode]) {
        self.name = name
        self.text = text
        self.children = children
    }

    /// The first child named `name`.
    public func child(_ name: String) -> XMLNode? {
        children.first { $0.name == name }
    }

    /// The text of the first child named `name`, nil when there is none.
    public func string(_ name: String) -> String? {
        child(name)?.text
    }

    /// A path of child names: `node["instanceState", "name"]`.
    public subscript(path: String...) -> XMLNode? {
        var node: XMLNode? = self
        for name in path { node = node?.child(name) }
        return node
    }

    /// The `<item>` children of the child named `name` (EC2's list form).
    public func items(_ name: String) -> [XMLNode] {
        child(name)?.children.filter { $0.name == "item" } ?? []
    }
}

public struct XMLParseError: Error, Sendable, CustomStringConvertible {
    public let line: Int
    public let column: Int
    public let reason: String
    public var description: String { "XML error at line \(line), column \(column): \(reason)" }
}

/// Parses a whole document with Foundation's streaming (SAX) parser into an
/// `XMLNode` tree. External entities are never resolved.
public enum XMLDocumentParser {
    public static func parse(_ bytes: [UInt8]) throws(XMLParseError) -> XMLNode {
        guard !bytes.isEmpty else { throw XMLParseError(line: 1, column: 1, reason: "empty document") }
        let parser = XMLParser(data: Data(bytes))
        parser.shouldResolveExternalEntities = false
        parser.shouldProcessNamespaces = false
        let builder = TreeBuilder()
        parser.delegate = builder
        let ok = parser.parse()
        // libxml2 may report success after stopping at content past the root
        // element; any error the delegate saw fails the document.
        if !ok || builder.root == nil || builder.failure != nil || builder.extraRoot {
            let reason = builder.failure ?? parser.parserError.map { String(describing: $0) } ?? "not a complete XML document"
            throw XMLParseError(line: parser.lineNumber, column: parser.columnNumber, reason: reason)
        }
        return builder.root!
    }
}

private final class TreeBuilder: NSObject, XMLParserDelegate {
    private final class Partial {
        let name: String
        var text = ""
        var children: [XMLNode] = []
        init(name: String) { self.name = name }
    }

    private var stack: [Partial] = []
    var root: XMLNode?
    var failure: String?
    /// A second top-level element: not a well-formed document.
    var extraRoot = false

    func parser(_ parser: XMLParser, didStartElement elementName: String, namespaceURI: String?,
                qualifiedName: String?, attributes: [String: String] = [:]) {
        let local = elementName.split(separator: ":").last.map(String.init) ?? elementName
        if stack.isEmpty && root != nil { extraRoot = true }
        stack.append(Partial(name: local))
    }

    func parser(_ parser: XMLParser, foundCharacters string: String) {
        if let current = stack.last {
            current.text += string
        } else if root != nil, string.contains(where: { !$0.isWhitespace }) {
            extraRoot = true
        }
    }

    func parser(_ parser: XMLParser, foundCDATA CDATABlock: Data) {
        stack.last?.text += String(decoding: CDATABlock, as: UTF8.self)
    }

    func parser(_ parser: XMLParser, didEndElement elementName: String, namespaceURI: String?, qualifiedName: String?) {
        guard let partial = stack.popLast() else { return }
        // Whitespace between child elements is layout, not text.
        let text = partial.children.isEmpty ? partial.text : partial.text.trimmingCharacters(in: .whitespacesAndNewlines)
        let node = XMLNode(name: partial.name, text: text, children: partial.children)
        if let parent = stack.last {
            parent.children.append(node)
        } else {
            root = node
        }
    }

    func parser(_ parser: XMLParser, parseErrorOccurred parseError: any Error) {
        failure = failure ?? "\(parseError)"
    }
}
