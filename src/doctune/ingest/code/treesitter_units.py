"""Units of JavaScript, TypeScript and Go files through tree-sitter grammars (the ``code`` extra).

JavaScript/TypeScript: function declarations (generators included), classes (abstract too) and their methods
(class fields holding a function count as methods), and functions assigned to a top-level ``const``
(``const f = (a) => ...``), exported or not. Go: functions and methods (qualified by their receiver's type).
Functions defined inside a function belong to it. The comments directly above a unit are its docstring. A file
tree-sitter cannot parse without error is reported (one error, at the first bad line), not half-read.
"""

from __future__ import annotations

import re
from functools import cache
from pathlib import PurePosixPath
from typing import Any

from doctune.ingest.code import CodeSyntaxError, ExtractedUnit, FileUnits, source_lines

FUNCTION_TYPES = {"function_declaration", "generator_function_declaration", "function_expression", "function"}
CLASS_TYPES = {"class_declaration", "abstract_class_declaration", "class"}
FUNCTION_VALUE_TYPES = {"arrow_function", "function_expression", "function", "generator_function"}
MEMBER_FIELD_TYPES = {"public_field_definition", "field_definition"}


class GrammarUnavailable(CodeSyntaxError):
    """tree-sitter or the language's grammar is not installed (``pip install 'doctune[code]'``)."""


@cache
def parser_for(grammar: str) -> Any:
    """A tree-sitter parser for ``grammar``: javascript, typescript, tsx or go."""
    try:
        import tree_sitter

        if grammar == "javascript":
            import tree_sitter_javascript as module

            language = module.language()
        elif grammar in ("typescript", "tsx"):
            import tree_sitter_typescript as module

            language = module.language_tsx() if grammar == "tsx" else module.language_typescript()
        elif grammar == "go":
            import tree_sitter_go as module

            language = module.language()
        else:
            raise GrammarUnavailable(f"no tree-sitter grammar for {grammar}")
    except ImportError as exc:
        raise GrammarUnavailable(
            f"tree-sitter grammar for {grammar} not installed ({exc.name}): pip install 'doctune[code]'"
        ) from None
    return tree_sitter.Parser(tree_sitter.Language(language))


def treesitter_units(text: str, path: str, language: str) -> FileUnits:
    """The module, class, function and method units of ``text`` (file ``path``; language javascript, typescript
    or go). Raises :class:`CodeSyntaxError` when the file does not parse."""
    grammar = "tsx" if language == "typescript" and path.endswith(".tsx") else language
    source = text.encode("utf-8")
    tree = parser_for(grammar).parse(source)
    root = tree.root_node
    if root.has_error:
        bad = _first_error(root)
        line = bad.start_point.row + 1 if bad is not None else 1
        raise CodeSyntaxError(f"syntax error at line {line} (tree-sitter {grammar})")
    reader = _Reader(text, source)
    stem = PurePosixPath(path).stem.split(".")[0]
    module_doc = reader.go_package_doc(root) if language == "go" else reader.leading_doc(root)
    units = [ExtractedUnit("module", stem, stem, "", module_doc, text, 1, max(1, len(text.splitlines())))]
    if language == "go":
        units += reader.go_units(root)
        imports = [_one_line(reader.text_of(n)) for n in _descendants(root, "import_spec")]
    else:
        units += reader.js_units(root)
        imports = reader.js_imports(root)
    return FileUnits(units=units, imports=list(dict.fromkeys(imports)))


class _Reader:
    """Turns the nodes of one parsed file into units."""

    def __init__(self, text: str, source: bytes) -> None:
        self.text = text
        self.source = source

    def text_of(self, node: Any) -> str:
        return self.source[node.start_byte : node.end_byte].decode("utf-8", "replace")

    def unit(self, kind: str, name: str, qualname: str, outer: Any, body: Any | None) -> ExtractedUnit:
        """A unit spanning ``outer`` (export keyword and decorators included); its signature ends at ``body``."""
        end = body.start_byte if body is not None else outer.end_byte
        signature = self.source[outer.start_byte : end].decode("utf-8", "replace").strip()
        if body is None:
            signature = signature.split("\n", 1)[0]
        start, stop = outer.start_point.row + 1, outer.end_point.row + 1
        return ExtractedUnit(
            kind, name, qualname, signature, self.doc_above(outer), source_lines(self.text, start, stop), start, stop
        )

    def doc_above(self, node: Any) -> str:
        """The comments directly above ``node`` (no blank line between), cleaned of their markers."""
        comments = []
        row = node.start_point.row
        prev = node.prev_named_sibling
        while prev is not None and prev.type == "comment" and prev.end_point.row >= row - 1:
            before = prev.prev_sibling
            if before is not None and before.end_point.row == prev.start_point.row:
                break  # a trailing comment of the code before it
            comments.append(prev)
            row = prev.start_point.row
            prev = prev.prev_named_sibling
        return "\n".join(clean_comment(self.text_of(c)) for c in reversed(comments)).strip()

    def leading_doc(self, root: Any) -> str:
        """A comment at the very top of a file, separated from what follows by a blank line (a file comment)."""
        children = root.named_children
        if not children or children[0].type != "comment" or children[0].start_point.row != 0:
            return ""
        first = children[0]
        following = children[1] if len(children) > 1 else None
        if following is not None and following.start_point.row <= first.end_point.row + 1:
            return ""  # attached to the declaration below
        return clean_comment(self.text_of(first))

    def go_package_doc(self, root: Any) -> str:
        clause = next((c for c in root.named_children if c.type == "package_clause"), None)
        return self.doc_above(clause) if clause is not None else ""

    # --- Go -------------------------------------------------------------------------------------------------
    def go_units(self, root: Any) -> list[ExtractedUnit]:
        units = []
        for node in root.named_children:
            name_node = node.child_by_field_name("name")
            if name_node is None:
                continue
            name = self.text_of(name_node)
            body = node.child_by_field_name("body")
            if node.type == "function_declaration":
                units.append(self.unit("function", name, name, node, body))
            elif node.type == "method_declaration":
                receiver = self.go_receiver_type(node.child_by_field_name("receiver"))
                units.append(self.unit("method", name, f"{receiver}.{name}" if receiver else name, node, body))
        return units

    def go_receiver_type(self, receiver: Any | None) -> str:
        """``Point`` for receivers ``(p *Point)``, ``(Point)``, ``(p *Point[T])``."""
        if receiver is None:
            return ""
        for param in receiver.named_children:
            kind = param.child_by_field_name("type")
            while kind is not None and kind.type in ("pointer_type", "generic_type", "parenthesized_type"):
                inner = kind.child_by_field_name("type")
                kind = inner if inner is not None else (kind.named_children[0] if kind.named_children else None)
            if kind is not None:
                return self.text_of(kind)
        return ""

    # --- JavaScript / TypeScript ----------------------------------------------------------------------------
    def js_units(self, root: Any) -> list[ExtractedUnit]:
        units: list[ExtractedUnit] = []
        for outer in root.named_children:
            decl = outer
            if outer.type == "export_statement":
                decl = outer.child_by_field_name("declaration") or outer.child_by_field_name("value")
                if decl is None:
                    continue
            name_node = decl.child_by_field_name("name")
            name = self.text_of(name_node) if name_node is not None else "default"
            if decl.type in FUNCTION_TYPES:
                units.append(self.unit("function", name, name, outer, decl.child_by_field_name("body")))
            elif decl.type in CLASS_TYPES:
                body = decl.child_by_field_name("body")
                units.append(self.unit("class", name, name, outer, body))
                if body is not None:
                    units += self.js_members(body, name)
            elif decl.type == "lexical_declaration" and self.text_of(decl).startswith("const"):
                units += self.js_const_functions(outer, decl)
        return units

    def js_const_functions(self, outer: Any, decl: Any) -> list[ExtractedUnit]:
        """``const f = (a) => ...`` / ``const f = function () {}``: one function per such declarator."""
        declarators = [d for d in decl.named_children if d.type == "variable_declarator"]
        units = []
        for declarator in declarators:
            value = declarator.child_by_field_name("value")
            name_node = declarator.child_by_field_name("name")
            if value is None or name_node is None or value.type not in FUNCTION_VALUE_TYPES:
                continue
            name = self.text_of(name_node)
            span = outer if len(declarators) == 1 else declarator
            units.append(self.unit("function", name, name, span, value.child_by_field_name("body")))
        return units

    def js_members(self, class_body: Any, class_name: str) -> list[ExtractedUnit]:
        units = []
        for member in class_body.named_children:
            name_node = member.child_by_field_name("name") or member.child_by_field_name("property")
            if name_node is None:
                continue
            name = self.text_of(name_node)
            if member.type == "method_definition":
                body = member.child_by_field_name("body")
            elif member.type in MEMBER_FIELD_TYPES:
                value = member.child_by_field_name("value")
                if value is None or value.type not in FUNCTION_VALUE_TYPES:
                    continue
                body = value.child_by_field_name("body")
            else:
                continue
            units.append(self.unit("method", name, f"{class_name}.{name}", member, body))
        return units

    def js_imports(self, root: Any) -> list[str]:
        """Top-level ``import`` statements and ``const x = require("...")`` declarations, one line each."""
        imports = []
        for node in root.named_children:
            if node.type == "import_statement" or (
                node.type in ("lexical_declaration", "variable_declaration") and _requires(node, self)
            ):
                imports.append(_one_line(self.text_of(node)))
        return imports


def _requires(node: Any, reader: _Reader) -> bool:
    for declarator in node.named_children:
        value = declarator.child_by_field_name("value") if declarator.type == "variable_declarator" else None
        if value is not None and value.type == "call_expression":
            function = value.child_by_field_name("function")
            if function is not None and reader.text_of(function) == "require":
                return True
    return False


def clean_comment(comment: str) -> str:
    """The text of a ``//`` or ``/* */`` comment without its markers and the leading ``*`` of JSDoc lines."""
    comment = comment.strip()
    if comment.startswith("/*"):
        comment = re.sub(r"^/\*+|\*+/$", "", comment)
        lines = [re.sub(r"^\s*\* ?", "", line) for line in comment.splitlines()]
    else:
        lines = [re.sub(r"^\s*//+ ?", "", line) for line in comment.splitlines()]
    return "\n".join(line.rstrip() for line in lines).strip()


def _one_line(text: str) -> str:
    return " ".join(text.split())


def _descendants(node: Any, node_type: str) -> list[Any]:
    found = []
    stack = [node]
    while stack:
        current = stack.pop()
        if current.type == node_type:
            found.append(current)
        stack.extend(reversed(current.named_children))
    return found


def _first_error(node: Any) -> Any | None:
    """The first ERROR or MISSING node, in source order."""
    stack = [node]
    while stack:
        current = stack.pop()
        if current.type == "ERROR" or current.is_missing:
            return current
        stack.extend(reversed([c for c in current.children if c.has_error or c.is_missing]))
    return None
