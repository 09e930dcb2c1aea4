"""Make the HTML of a received email safe to display, and render it as plain text.

The web layer shows the result inside a sandboxed iframe under a strict CSP; this module does
not rely on either: its output carries no script, no event handler, no active URL, no form and
no remote fetch (unless remote images are allowed) even when inserted straight into a page.
"""
from __future__ import annotations

import logging
import re
from collections.abc import Callable
from dataclasses import dataclass
from html.parser import HTMLParser
from urllib.parse import unquote

import nh3

log = logging.getLogger(__name__)

ALLOWED_TAGS = frozenset({
    "a", "abbr", "address", "article", "b", "big", "blockquote", "br", "caption", "center",
    "cite", "code", "col", "colgroup", "dd", "del", "div", "dl", "dt", "em", "figcaption",
    "figure", "font", "footer", "h1", "h2", "h3", "h4", "h5", "h6", "header", "hr", "i", "img",
    "ins", "kbd", "li", "main", "mark", "ol", "p", "pre", "q", "s", "section", "small", "span",
    "strike", "strong", "sub", "sup", "table", "tbody", "td", "tfoot", "th", "thead", "tr",
    "tt", "u", "ul", "wbr",
})
# Elements dropped together with their content: their text is code or metadata, not message.
DROPPED_WITH_CONTENT_TAGS = frozenset({
    "head", "math", "noembed", "noframes", "noscript", "script", "select", "style", "svg",
    "template", "textarea", "title", "xmp",
})
# No id, name or class: they would clash with (or clobber) the page if shown without the iframe.
ALLOWED_ATTRIBUTES: dict[str, set[str]] = {
    "*": {"align", "bgcolor", "dir", "height", "lang", "style", "title", "valign", "width"},
    "a": {"href"},
    "col": {"span"},
    "colgroup": {"span"},
    "font": {"color", "face", "size"},
    "img": {"alt", "border", "hspace", "src", "vspace"},
    "li": {"type", "value"},
    "ol": {"reversed", "start", "type"},
    "table": {"border", "cellpadding", "cellspacing", "summary"},
    "td": {"colspan", "headers", "nowrap", "rowspan", "scope"},
    "th": {"colspan", "headers", "nowrap", "rowspan", "scope"},
    "ul": {"type"},
}
LINK_SCHEMES = frozenset({"http", "https", "mailto", "tel"})
REMOTE_SCHEMES = frozenset({"http", "https"})
SCRIPT_SCHEMES = frozenset({"javascript", "vbscript", "livescript", "data"})
# What nh3 lets through to our attribute filter, which has the final word on every URL.
NH3_URL_SCHEMES = LINK_SCHEMES | {"cid", "data"}
# Inline styles carry the layout of most HTML mail, so they stay, but nh3 has no CSS value
# sanitiser: we keep only these properties (none of which can load a URL) with plain values.
# No position/z-index and no negative margins: no overlay on top of the page around the mail.
STYLE_PROPERTIES = frozenset({
    "background-color", "border", "border-bottom", "border-bottom-color", "border-bottom-style",
    "border-bottom-width", "border-collapse", "border-color", "border-left", "border-left-color",
    "border-left-style", "border-left-width", "border-radius", "border-right",
    "border-right-color", "border-right-style", "border-right-width", "border-spacing",
    "border-style", "border-top", "border-top-color", "border-top-style", "border-top-width",
    "border-width", "clear", "color", "direction", "display", "float", "font", "font-family",
    "font-size", "font-style", "font-variant", "font-weight", "height", "letter-spacing",
    "line-height", "list-style-type", "margin", "margin-bottom", "margin-left", "margin-right",
    "margin-top", "max-height", "max-width", "min-height", "min-width", "padding",
    "padding-bottom", "padding-left", "padding-right", "padding-top", "table-layout",
    "text-align", "text-decoration", "text-indent", "text-transform", "vertical-align",
    "white-space", "width", "word-spacing",
})
STYLE_VALUE_MAX_CHARS = 200
_COLOUR_FUNCTION_RE = re.compile(r"\b(?:rgba?|hsla?)\(\s*[\d.,%\s/]*\)", re.IGNORECASE)
# Letters, digits, spaces and , . # % / ' " + - !  -- no parentheses, backslashes, colons or @.
_PLAIN_STYLE_VALUE_RE = re.compile(r"[\w\s,.#%/'\"+!-]*")
_LONE_SURROGATES_RE = re.compile(r"[\ud800-\udfff]")
# Browsers drop tabs and newlines anywhere in a URL, and C0 controls and spaces around it.
_URL_INVISIBLES_RE = re.compile(r"[\t\n\r]")
_C0_CONTROLS_AND_SPACE = "".join(map(chr, range(0x21)))
_SCHEME_RE = re.compile(r"([a-zA-Z][a-zA-Z0-9+.-]*):")
_RASTER_DATA_URI_RE = re.compile(r"data:image/(?:png|gif|jpeg|jpg|webp);base64,[A-Za-z0-9+/=\s]*\Z",
                                 re.IGNORECASE)


@dataclass
class SafeHtml:
    html: str
    blocked_images: int


def sanitise(html: str, *, allow_remote_images: bool = False,
             cid_url: Callable[[str], str | None] | None = None) -> SafeHtml:
    """Return `html` reduced to formatting that cannot run code or submit anything.

    Links keep only http(s)/mailto/tel targets and open in a new tab with rel="noopener
    noreferrer". Remote (http/https) images lose their src unless `allow_remote_images`; each
    one counts in `blocked_images`. A `cid:` image src becomes `cid_url(content_id)`, or is
    dropped when that returns None (or raises: logged, never raised). data: URIs are kept only
    as base64 png/gif/jpeg/webp image sources. Never raises for any string input.
    """
    attribute_filter = _AttributeFilter(allow_remote_images, cid_url)
    cleaned = nh3.clean(
        _LONE_SURROGATES_RE.sub("\ufffd", html),  # nh3 (Rust) takes only valid Unicode
        tags=set(ALLOWED_TAGS),
        clean_content_tags=set(DROPPED_WITH_CONTENT_TAGS),
        attributes=ALLOWED_ATTRIBUTES,
        attribute_filter=attribute_filter,
        url_schemes=set(NH3_URL_SCHEMES),
        url_relative=attribute_filter.keep_relative,
        filter_style_properties=set(STYLE_PROPERTIES),
        set_tag_attribute_values={"a": {"target": "_blank"},
                                  "img": {"referrerpolicy": "no-referrer"}},
    )
    return SafeHtml(html=cleaned, blocked_images=attribute_filter.blocked_images)


class _AttributeFilter:
    """nh3's attribute_filter for one sanitise() call: it has the last word on every URL.

    nh3 checks schemes before calling it and does not check what it returns, so each value
    returned here must be safe on its own.
    """

    def __init__(self, allow_remote_images: bool,
                 cid_url: Callable[[str], str | None] | None) -> None:
        self.allow_remote_images = allow_remote_images
        self.cid_url = cid_url
        self.blocked_images = 0
        self.resolved_urls: set[str] = set()

    def __call__(self, element: str, attribute: str, value: str) -> str | None:
        try:
            if attribute == "style":
                return _filter_style(value)
            if attribute == "href":
                url = _normalise_url(value)
                return url if _scheme(url) in LINK_SCHEMES else None
            if attribute == "src":
                return self._image_source(_normalise_url(value)) if element == "img" else None
            # Inert here, but never leave a script URL where a later allow-list might read one.
            return None if _scheme(_normalise_url(value)) in SCRIPT_SCHEMES else value
        except Exception:  # a raise inside nh3 would only reach sys.unraisablehook
            log.exception("dropping %s=%r on <%s>", attribute, value[:80], element)
            return None

    def _image_source(self, url: str) -> str | None:
        scheme = _scheme(url)
        if scheme in REMOTE_SCHEMES or url.startswith("//"):
            if self.allow_remote_images and scheme in REMOTE_SCHEMES:
                return url
            self.blocked_images += 1
            return None
        if scheme == "cid" and self.cid_url is not None:
            resolved = self.cid_url(_content_id(url))
            if resolved:
                self.resolved_urls.add(resolved)
            return resolved or None
        return url if _RASTER_DATA_URI_RE.match(url) else None

    def keep_relative(self, url: str) -> str | None:
        """nh3's url_relative: relative URLs mean nothing in a mail, unless cid_url made them."""
        return url if url in self.resolved_urls else None


def _normalise_url(value: str) -> str:
    return _URL_INVISIBLES_RE.sub("", value).strip(_C0_CONTROLS_AND_SPACE)


def _scheme(url: str) -> str | None:
    match = _SCHEME_RE.match(url)
    return match.group(1).lower() if match else None


def _content_id(cid_url_value: str) -> str:
    return unquote(cid_url_value[4:]).strip().strip("<>")


def _filter_style(value: str) -> str | None:
    kept = []
    for declaration in value.split(";"):
        name, colon, val = declaration.partition(":")
        name, val = name.strip().lower(), val.strip()
        if not colon or name not in STYLE_PROPERTIES or not val:
            continue
        if len(val) > STYLE_VALUE_MAX_CHARS or (name.startswith("margin") and "-" in val):
            continue
        if _PLAIN_STYLE_VALUE_RE.fullmatch(_COLOUR_FUNCTION_RE.sub("c", val)):
            kept.append(f"{name}: {val}")
    return "; ".join(kept) or None


# Text rendering ------------------------------------------------------------------------------

_SKIPPED_TEXT_TAGS = frozenset({"noscript", "script", "style", "template", "title"})
_BLOCK_TAGS = frozenset({
    "address", "article", "blockquote", "br", "center", "dd", "div", "dl", "dt", "figure",
    "footer", "form", "h1", "h2", "h3", "h4", "h5", "h6", "header", "hr", "li", "main", "ol",
    "p", "pre", "section", "table", "tr", "ul",
})
_CELL_TAGS = frozenset({"td", "th"})
_SPACES_RE = re.compile(r"[ \t\r\n\f\v\u00a0]+")
_BLANK_LINES_RE = re.compile(r"\n{3,}")
_KEPT_SPACE = "\ue000"  # a private-use character standing in for a space inside <pre>


class _TextExtractor(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.chunks: list[str] = []
        self.skip_depth = 0
        self.pre_depth = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "body":
            self.skip_depth = 0  # an unclosed <title> or <noscript> must not hide the whole body
        elif tag in _SKIPPED_TEXT_TAGS:
            self.skip_depth += 1
        elif tag == "pre":
            self.pre_depth += 1
        if tag in _BLOCK_TAGS:
            self.chunks.append("\n")
        elif tag in _CELL_TAGS:
            self.chunks.append(" ")
        if tag == "li":
            self.chunks.append("- ")

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in _BLOCK_TAGS:
            self.chunks.append("\n")

    def handle_endtag(self, tag: str) -> None:
        if tag in _SKIPPED_TEXT_TAGS:
            self.skip_depth = max(0, self.skip_depth - 1)
        elif tag == "pre":
            self.pre_depth = max(0, self.pre_depth - 1)
        if tag in _BLOCK_TAGS:
            self.chunks.append("\n")

    def handle_data(self, data: str) -> None:
        if self.skip_depth:
            return
        if self.pre_depth:  # protect its spaces from the line trimming in html_to_text
            self.chunks.append(data.replace(" ", _KEPT_SPACE))
        else:
            self.chunks.append(_SPACES_RE.sub(" ", data))


def html_to_text(html: str) -> str:
    """Return the readable text of `html` (for snippets and search); never raises.

    Script, style and head content is skipped; block elements become line breaks.
    """
    extractor = _TextExtractor()
    try:
        extractor.feed(html)
        extractor.close()
    except Exception:  # html.parser is lenient; keep whatever text came out before a failure
        log.debug("html.parser gave up", exc_info=True)
    lines = (line.strip(" ") for line in "".join(extractor.chunks).split("\n"))
    text = _BLANK_LINES_RE.sub("\n\n", "\n".join(lines)).strip()
    return text.replace(_KEPT_SPACE, " ")
