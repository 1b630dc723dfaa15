//! Proto comments to rustdoc. Comments are prose written for other generators, so they are
//! made safe here: code never becomes a doctest, brackets never become broken intra-doc
//! links, and bare URLs and angle brackets never trip rustdoc's lints.

use crate::ir::Comments;

/// The doc lines for a node: leading comments, then trailing ones, sanitised.
pub(crate) fn lines(comments: &Comments) -> Vec<String> {
    let mut raw: Vec<String> = comments.leading.clone();
    if !comments.trailing.is_empty() {
        if !raw.is_empty() {
            raw.push(String::new());
        }
        raw.extend(comments.trailing.iter().cloned());
    }
    sanitize(&raw)
}

/// Turns raw comment lines into markdown that rustdoc and clippy accept as it is.
pub(crate) fn sanitize(raw: &[String]) -> Vec<String> {
    // Characters that change the visible direction of text are denied in doc comments by
    // rustc (`text_direction_codepoint_in_comment`): they are written as escapes.
    let raw: Vec<String> = raw.iter().map(|l| escape_direction_marks(l)).collect();
    let lines: Vec<&str> = raw.iter().map(|l| l.trim_end()).collect();
    // `// text` arrives as " text": drop the indentation every line shares. Indentation is
    // ASCII spaces and tabs, as markdown counts it; other whitespace (an ideographic space)
    // is text.
    let common = lines
        .iter()
        .filter(|l| !l.trim().is_empty())
        .map(|l| indent_of(l))
        .min()
        .unwrap_or(0);
    let lines: Vec<String> = lines
        .iter()
        .map(|l| l.get(common..).unwrap_or("").replace('\t', "    "))
        .collect();

    let mut out = Vec::new();
    // The open fence: its character and length, as CommonMark closes it.
    let mut fence: Option<(char, usize)> = None;
    let mut in_indented_code = false;
    // The open list item's indent and its content's indent.
    let mut list_indent: Option<(usize, usize)> = None;
    let mut previous_blank = true;
    for line in &lines {
        let indent = indent_of(line);
        let trimmed = &line[indent..];
        if let Some((c, len)) = fence {
            if indent < 4
                && fence_at(trimmed)
                    .is_some_and(|(d, n, info)| d == c && n >= len && info.trim().is_empty())
            {
                fence = None;
                out.push(c.to_string().repeat(len));
            } else {
                out.push(line.clone());
            }
            continue;
        }
        // An indented block ends at the first line that is not part of it, fence or not.
        if in_indented_code {
            if trimmed.trim().is_empty() || indent >= 4 {
                out.push(line.get(4..).unwrap_or("").to_owned());
                continue;
            }
            while out.last().is_some_and(|l: &String| l.is_empty()) {
                out.pop();
            }
            out.push("```".to_owned());
            out.push(String::new());
            in_indented_code = false;
        }
        if let Some((c, len, _)) = fence_at(trimmed).filter(|_| indent < 4) {
            // Whatever language the comment names, its code must not run as a doctest. The
            // fence keeps its character and length, so a shorter fence inside stays text.
            fence = Some((c, len));
            out.push(format!("{}text", c.to_string().repeat(len)));
            list_indent = None;
            continue;
        }
        if trimmed.trim().is_empty() {
            // A blank line does not end a list item: a later line indented to its content is
            // another paragraph of the item (and a line after that may continue it lazily).
            out.push(String::new());
            previous_blank = true;
            continue;
        }
        if indent >= 4 && previous_blank && list_indent.is_none() {
            in_indented_code = true;
            out.push("```text".to_owned());
            out.push(line[4..].to_owned());
            previous_blank = false;
            continue;
        }
        let text = if let Some(marker) = list_marker_width(trimmed) {
            let item_indent = indent.min(3);
            list_indent = Some((item_indent, item_indent + marker));
            // A fence that opens inside a list item would be code of the item's: written as
            // text instead, so nothing in it runs as a doctest.
            let (bullet, content) = trimmed.split_at(marker.min(trimmed.len()));
            let content = match fence_at(content) {
                Some((c, len, rest)) => {
                    format!("{}{}", format!("\\{c}").repeat(len), escape_markdown(rest))
                }
                None => escape_markdown(content),
            };
            format!(
                "{}{}{}",
                " ".repeat(item_indent),
                escape_markdown(bullet),
                content
            )
        } else if let Some((item_indent, content_indent)) = list_indent {
            // After a blank line only text indented to the item's content stays in it.
            let continues = if previous_blank {
                indent >= content_indent
            } else {
                indent > item_indent
            };
            if continues {
                // A list item's continuation, indented exactly as markdown expects.
                format!("{}{}", " ".repeat(content_indent), escape_markdown(trimmed))
            } else {
                // Text no deeper than the item ends the list, rather than continue its last item.
                if !previous_blank {
                    out.push(String::new());
                }
                list_indent = None;
                format!("{}{}", " ".repeat(indent.min(3)), escape_markdown(trimmed))
            }
        } else {
            format!("{}{}", " ".repeat(indent.min(3)), escape_markdown(trimmed))
        };
        out.push(text);
        previous_blank = false;
    }
    if fence.is_some() || in_indented_code {
        while out.last().is_some_and(|l: &String| l.is_empty()) {
            out.pop();
        }
        let (c, len) = fence.unwrap_or(('`', 3));
        out.push(c.to_string().repeat(len));
    }
    while out.last().is_some_and(|l: &String| l.is_empty()) {
        out.pop();
    }
    while out.first().is_some_and(|l: &String| l.is_empty()) {
        out.remove(0);
    }
    out
}

/// A code fence at the start of `text` (CommonMark: three or more backticks or tildes; a
/// backtick fence's info string has no backtick): its character, its length and the rest.
fn fence_at(text: &str) -> Option<(char, usize, &str)> {
    let c = text.chars().next().filter(|c| *c == '`' || *c == '~')?;
    let len = text.chars().take_while(|d| *d == c).count();
    let info = &text[len..];
    (len >= 3 && !(c == '`' && info.contains('`'))).then_some((c, len, info))
}

/// Width of a list marker and the spaces after it (`- `, `*  `, `1. `) at the start of `text`:
/// where the item's content starts.
fn list_marker_width(text: &str) -> Option<usize> {
    let marker = if text.starts_with(['-', '*', '+']) {
        1
    } else {
        let digits = text.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 || digits >= 10 || !text[digits..].starts_with(['.', ')']) {
            return None;
        }
        digits + 1
    };
    let rest = &text[marker..];
    if rest.is_empty() {
        return Some(marker + 1);
    }
    let spaces = rest.len() - rest.trim_start_matches(' ').len();
    (1..=4).contains(&spaces).then_some(marker + spaces)
}

/// Bytes of ASCII spaces and tabs at the start of `line`: its markdown indentation.
fn indent_of(line: &str) -> usize {
    line.len() - line.trim_start_matches([' ', '\t']).len()
}

/// Escapes what rustdoc would misread, outside inline code spans.
fn escape_markdown(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 8);
    let mut in_code = false;
    let mut rest = text;
    while let Some(c) = rest.chars().next() {
        if c == '`' {
            in_code = !in_code;
            out.push(c);
            rest = &rest[1..];
            continue;
        }
        if !in_code {
            if let Some(url_len) = url_at(rest) {
                out.push('<');
                out.push_str(&rest[..url_len]);
                out.push('>');
                rest = &rest[url_len..];
                continue;
            }
            if matches!(c, '[' | ']' | '<' | '>' | '*' | '_' | '\\' | '#') {
                if c == '*' || c == '_' || c == '#' {
                    // Emphasis and headings are common in comments and harmless; keep them.
                    out.push(c);
                } else {
                    out.push('\\');
                    out.push(c);
                }
                rest = &rest[c.len_utf8()..];
                continue;
            }
        }
        out.push(c);
        rest = &rest[c.len_utf8()..];
    }
    if in_code {
        // An unclosed backtick would swallow the rest of the doc; close it on this line.
        out.push('`');
    }
    out
}

/// Length of the URL starting at `text`, if one does.
fn url_at(text: &str) -> Option<usize> {
    if !(text.starts_with("http://") || text.starts_with("https://")) {
        return None;
    }
    let len = text
        .find(|c: char| {
            c.is_whitespace()
                || matches!(c, '<' | '>' | '`' | '"' | '(' | ')' | '[' | ']' | '{' | '}')
        })
        .unwrap_or(text.len());
    // A sentence's final period or comma is not part of the URL.
    let trimmed = text[..len].trim_end_matches(['.', ',', ';', ':']);
    // A scheme with no host after it (`https://[name]/...` templates) is not a link.
    let host = trimmed.split_once("://").map_or("", |(_, rest)| rest);
    host.starts_with(|c: char| c.is_ascii_alphanumeric())
        .then_some(trimmed.len())
}

/// `line` with each bidirectional control character (U+202A to U+202E, U+2066 to U+2069)
/// written as `\u{...}`.
fn escape_direction_marks(line: &str) -> String {
    if !line.chars().any(is_direction_mark) {
        return line.to_owned();
    }
    line.chars()
        .map(|c| {
            if is_direction_mark(c) {
                format!("\\u{{{:04X}}}", c as u32)
            } else {
                c.to_string()
            }
        })
        .collect()
}

fn is_direction_mark(c: char) -> bool {
    matches!(c, '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}')
}

#[cfg(test)]
mod tests {

    #[test]
    fn ideographic_spaces_are_text_not_indentation() {
        // Full-width spaces after a blank line once sliced a character in half.
        let raw: Vec<String> = [" Title", "", " \u{3000}\u{3000}indented", " \u{3000}x"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        assert_eq!(
            sanitize(&raw),
            ["Title", "", "\u{3000}\u{3000}indented", "\u{3000}x"]
        );
    }
    use super::*;

    fn s(lines: &[&str]) -> Vec<String> {
        sanitize(&lines.iter().map(|l| l.to_string()).collect::<Vec<_>>())
    }

    #[test]
    fn shared_indentation_is_removed() {
        assert_eq!(s(&[" Hello.", " World."]), ["Hello.", "World."]);
    }

    #[test]
    fn indented_blocks_become_text_fences() {
        assert_eq!(
            s(&[
                " Example:",
                "",
                "     let x = 1;",
                "     x + 1",
                "",
                " After."
            ]),
            [
                "Example:",
                "",
                "```text",
                "let x = 1;",
                "x + 1",
                "```",
                "",
                "After."
            ]
        );
    }

    #[test]
    fn fences_never_run_as_doctests() {
        assert_eq!(
            s(&["```rust", "panic!()", "```"]),
            ["```text", "panic!()", "```"]
        );
        assert_eq!(s(&["```", "unclosed"]), ["```text", "unclosed", "```"]);
        // Tildes are fences too, and a fence closes only with its own kind and length.
        assert_eq!(
            s(&["~~~", "not rust", "~~~"]),
            ["~~~text", "not rust", "~~~"]
        );
        assert_eq!(
            s(&["````", "```", "fn main() {}", "```", "````"]),
            ["````text", "```", "fn main() {}", "```", "````"]
        );
        assert_eq!(
            s(&["~~~~", "~~~", "still inside", "~~~~", "after"]),
            ["~~~~text", "~~~", "still inside", "~~~~", "after"]
        );
    }

    #[test]
    fn brackets_urls_and_tags_are_escaped() {
        assert_eq!(s(&["See [foo] and <bar>."]), [r"See \[foo\] and \<bar\>."]);
        assert_eq!(
            s(&["At https://example.com/x."]),
            ["At <https://example.com/x>."]
        );
        assert_eq!(s(&["Code `a[0] <b>` stays."]), ["Code `a[0] <b>` stays."]);
    }

    #[test]
    fn indented_list_items_keep_their_continuations_and_end_cleanly() {
        assert_eq!(
            s(&[
                "Optional if:",
                " - can be retrieved from",
                "  the issuer.",
                " - second",
                "",
                "After."
            ]),
            [
                "Optional if:",
                " - can be retrieved from",
                "   the issuer.",
                " - second",
                "",
                "After."
            ]
        );
        assert_eq!(
            s(&["Audiences:", "  - one", "  - two", "  will be accepted."]),
            [
                "Audiences:",
                "  - one",
                "  - two",
                "",
                "  will be accepted."
            ]
        );
        assert_eq!(
            s(&["-", "  https://a.example/x"]),
            ["-", "  <https://a.example/x>"]
        );
    }

    #[test]
    fn later_paragraphs_of_a_list_item_stay_in_it_and_lazy_lines_do_not_continue_them() {
        assert_eq!(
            s(&["- item", "", "  second paragraph", "lazy line", "", "after"]),
            [
                "- item",
                "",
                "  second paragraph",
                "",
                "lazy line",
                "",
                "after"
            ]
        );
        assert_eq!(
            s(&["1. item", "", "  not in it", "", "    code?"]),
            ["1. item", "", "  not in it", "", "```text", "code?", "```"]
        );
    }

    #[test]
    fn url_templates_are_not_links() {
        assert_eq!(
            s(&["\"https://[service.name]/x\""]),
            [r#""https://\[service.name\]/x""#]
        );
    }

    #[test]
    fn list_continuations_are_indented_and_unindented_text_ends_the_list() {
        assert_eq!(
            s(&[
                "- first item",
                "continues here",
                "- second",
                "      over-indented"
            ]),
            [
                "- first item",
                "",
                "continues here",
                "- second",
                "  over-indented"
            ]
        );
        assert_eq!(
            s(&["*  wide marker", "  continues"]),
            ["*  wide marker", "   continues"]
        );
    }
}
