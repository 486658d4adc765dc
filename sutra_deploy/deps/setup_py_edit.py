"""setup.py's install_requires edited with libcst, which keeps every byte it is not told to
change: the list's quotes, layout, trailing comma and comments. The list (or the setup()
call, to add install_requires) is found by the position ast gave it when it was read.

Imported only when a setup.py is edited (see edit.py): libcst is slow to import."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import libcst as cst
from libcst.metadata import MetadataWrapper, PositionProvider

from .model import Declaration, ListEdit


def edit_setup_py(declaration: Declaration, edit: ListEdit) -> str:
    assert declaration.anchor is not None
    kind, line, column = declaration.anchor
    wrapper = MetadataWrapper(cst.parse_module(declaration.text))
    positions = wrapper.resolve(PositionProvider)
    module = wrapper.module
    if kind == "list":
        node = next(
            n
            for n, p in positions.items()
            if isinstance(n, (cst.List, cst.Tuple)) and _start(n, positions) == (line, column)
        )
        new: cst.CSTNode = _Brackets.of(node).edit(edit).node()
    else:
        node = next(
            n
            for n, p in positions.items()
            if isinstance(n, cst.Call) and (p.start.line, p.start.column) == (line, column)
        )
        new = _add_keyword(node, edit.append)
    return module.deep_replace(node, new).code


def _start(node: cst.CSTNode, positions: Mapping[cst.CSTNode, Any]) -> tuple[int, int]:
    # ast's tuple starts at its parenthesis, libcst's inside it.
    lpar = getattr(node, "lpar", None)
    start = positions[lpar[0] if lpar else node].start
    return start.line, start.column


Whitespace = cst.SimpleWhitespace | cst.ParenthesizedWhitespace


@dataclass
class _Brackets:
    """A bracketed list as gaps and items: gaps[k] is the whitespace (and comments) before
    item k, gaps[-1] the whitespace before the closing bracket. Comments live in the gaps:
    the first line of a gap ends the previous item's line, its empty lines are comment lines
    above the next item."""

    original: cst.List | cst.Tuple
    values: list[cst.BaseExpression]
    gaps: list[Whitespace]
    trailing_comma: bool

    @classmethod
    def of(cls, node: cst.List | cst.Tuple) -> _Brackets:
        if isinstance(node, cst.List):
            opening, closing = node.lbracket.whitespace_after, node.rbracket.whitespace_before
        else:
            opening, closing = node.lpar[0].whitespace_after, node.rpar[-1].whitespace_before
        elements = list(node.elements)
        if not elements:
            # An empty list has one gap, held by either bracket.
            return cls(node, [], [closing if _is_blank(opening) else opening], False)
        gaps: list[Whitespace] = [opening]
        for element in elements[:-1]:
            assert isinstance(element.comma, cst.Comma)
            gaps.append(element.comma.whitespace_after)
        trailing = isinstance(elements[-1].comma, cst.Comma)
        if trailing:
            after_comma = elements[-1].comma.whitespace_after  # type: ignore[union-attr]
            # The space after a trailing comma is in the comma or before the bracket, not both.
            if not _is_blank(after_comma):
                closing = after_comma
        gaps.append(closing)
        return cls(node, [e.value for e in elements], gaps, trailing)

    @property
    def multiline(self) -> bool:
        return any(isinstance(g, cst.ParenthesizedWhitespace) for g in self.gaps)

    def edit(self, edit: ListEdit) -> _Brackets:
        quote = self._quote()
        for index, raw in edit.replace.items():
            self.values[index] = cst.SimpleString(_python_string(raw, quote))
        # Appending first learns the layout from every item, including those to be dropped.
        for raw in edit.append:
            self._append(cst.SimpleString(_python_string(raw, quote)))
        for index in sorted(edit.drop, reverse=True):
            self._drop(index)
        return self

    def _quote(self) -> str:
        for value in self.values:
            if isinstance(value, cst.SimpleString) and value.value[:1] in ("'", '"'):
                return value.value[0]
        return '"'

    def _drop(self, index: int) -> None:
        before, after = self.gaps[index], self.gaps[index + 1]
        if isinstance(before, cst.ParenthesizedWhitespace) and isinstance(after, cst.ParenthesizedWhitespace):
            # The item's own line goes with its trailing comment; comment lines above and
            # below it stay, and so does the previous line's trailing comment.
            merged: Whitespace = after.with_changes(
                first_line=before.first_line, empty_lines=[*before.empty_lines, *after.empty_lines]
            )
        elif isinstance(before, cst.ParenthesizedWhitespace):
            # The last item's line also holds the closing bracket, which stays on the line above.
            merged = after if index == len(self.values) - 1 else before
        elif isinstance(after, cst.ParenthesizedWhitespace):
            merged = after  # the item shares its line with what precedes: keep that line's comment
        else:
            merged = before if index == 0 else after
        del self.values[index]
        self.gaps[index : index + 2] = [merged]
        if not self.values and not _has_comment(merged):
            self.gaps = [cst.SimpleWhitespace("")]

    def _append(self, value: cst.BaseExpression) -> None:
        end = self.gaps[-1]
        if not self.multiline:
            self.gaps[-1:] = [cst.SimpleWhitespace(" ") if self.values else end, end]
            self.values.append(value)
            return
        indent, last_line = self._item_indent()
        if isinstance(end, cst.ParenthesizedWhitespace):
            # New items go last, after any comment lines that end the list.
            into = end.with_changes(indent=indent, last_line=cst.SimpleWhitespace(last_line))
            closing: Whitespace = cst.ParenthesizedWhitespace(
                first_line=cst.TrailingWhitespace(), indent=end.indent, last_line=end.last_line
            )
        else:
            into = cst.ParenthesizedWhitespace(
                first_line=cst.TrailingWhitespace(), indent=indent, last_line=cst.SimpleWhitespace(last_line)
            )
            closing = end
        self.gaps[-1:] = [into, closing]
        self.values.append(value)

    def _item_indent(self) -> tuple[bool, str]:
        """The indentation existing items have, else one level deeper than the closing bracket."""
        for gap in reversed(self.gaps[:-1]):
            if isinstance(gap, cst.ParenthesizedWhitespace):
                return gap.indent, gap.last_line.value
        end = self.gaps[-1]
        if isinstance(end, cst.ParenthesizedWhitespace):
            return end.indent, end.last_line.value + "    "
        return True, "    "

    def node(self) -> cst.List | cst.Tuple:
        count = len(self.values)
        trailing = self.trailing_comma or (isinstance(self.original, cst.Tuple) and count == 1)
        elements = []
        for index, value in enumerate(self.values):
            last = index == count - 1
            if not last:
                comma: cst.Comma | cst.MaybeSentinel = cst.Comma(whitespace_after=self.gaps[index + 1])
            else:
                comma = cst.Comma() if trailing else cst.MaybeSentinel.DEFAULT
            elements.append(cst.Element(value, comma=comma))
        opening = self.gaps[0]
        closing = self.gaps[-1] if self.values else cst.SimpleWhitespace("")
        if isinstance(self.original, cst.List):
            return self.original.with_changes(
                elements=elements,
                lbracket=self.original.lbracket.with_changes(whitespace_after=opening),
                rbracket=self.original.rbracket.with_changes(whitespace_before=closing),
            )
        lpar, rpar = list(self.original.lpar), list(self.original.rpar)
        lpar[0] = lpar[0].with_changes(whitespace_after=opening)
        rpar[-1] = rpar[-1].with_changes(whitespace_before=closing)
        return self.original.with_changes(elements=elements, lpar=lpar, rpar=rpar)


def _is_blank(gap: Whitespace) -> bool:
    return isinstance(gap, cst.SimpleWhitespace) and not gap.value


def _has_comment(gap: Whitespace) -> bool:
    if isinstance(gap, cst.SimpleWhitespace):
        return False
    return gap.first_line.comment is not None or any(line.comment for line in gap.empty_lines)


def _add_keyword(call: cst.Call, requirements: Sequence[str]) -> cst.Call:
    """setup(...) without install_requires gets one, laid out as the call's other arguments."""
    args = list(call.args)
    as_list = _Brackets(cst.List([]), [], [cst.SimpleWhitespace("")], trailing_comma=False)
    keyword = cst.Arg(
        value=cst.List([]),
        keyword=cst.Name("install_requires"),
        equal=cst.AssignEqual(cst.SimpleWhitespace(""), cst.SimpleWhitespace("")),
    )
    if not args:
        as_list.edit(ListEdit(append=list(requirements)))
        return call.with_changes(args=[keyword.with_changes(value=as_list.node())])
    last = args[-1]
    trailing = isinstance(last.comma, cst.Comma)
    end = last.comma.whitespace_after if isinstance(last.comma, cst.Comma) else last.whitespace_after_arg
    if isinstance(end, cst.ParenthesizedWhitespace):
        previous = args[-2].comma.whitespace_after if len(args) > 1 else call.whitespace_before_args  # type: ignore[union-attr]
        indent = previous.last_line.value if isinstance(previous, cst.ParenthesizedWhitespace) else "    "
        # One requirement per line, the list's items one level deeper than the argument.
        as_list.gaps = [
            cst.ParenthesizedWhitespace(
                first_line=cst.TrailingWhitespace(), indent=True, last_line=cst.SimpleWhitespace(indent)
            )
        ]
        as_list.trailing_comma = True
        into: Whitespace = end.with_changes(last_line=cst.SimpleWhitespace(indent))
        closing: Whitespace = cst.ParenthesizedWhitespace(
            first_line=cst.TrailingWhitespace(), indent=end.indent, last_line=end.last_line
        )
    else:
        into, closing = cst.SimpleWhitespace(" "), end
    as_list.edit(ListEdit(append=list(requirements)))
    args[-1] = last.with_changes(
        comma=cst.Comma(whitespace_after=into), whitespace_after_arg=cst.SimpleWhitespace("")
    )
    if trailing:
        added = keyword.with_changes(value=as_list.node(), comma=cst.Comma(whitespace_after=closing))
    else:
        added = keyword.with_changes(value=as_list.node(), whitespace_after_arg=closing)
    return call.with_changes(args=[*args, added])


def _python_string(value: str, quote: str) -> str:
    if quote not in value and "\\" not in value:
        return f"{quote}{value}{quote}"
    return repr(value)
