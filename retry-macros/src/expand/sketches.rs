//! The `// Input: ... // Output: ...` sketches above each mode's rewrite, checked against the
//! real expansion so that they cannot drift: every call, macro call and struct literal of a
//! sketch's output, with its arguments, must appear in the expansion of the sketch's input.
//!
//! Both sides are compared as normalized token text: paths lose their module segments
//! (`::retry_runtime::__private::durable::enqueue` is `enqueue`, `::core::option::Option::Some`
//! is `Some`), generated names lose their `__retry_` prefix, integer and float literals their
//! suffix. In a sketch, an ALL-CAPS word (`NAME`, `BODY(id)` with its arguments, `T`) and `..`
//! stand for any tokens.

use proc_macro2::{Delimiter, TokenStream, TokenTree};

/// The files with sketches, and how many each has.
const SOURCES: &[(&str, &str, usize)] = &[
    ("inline.rs", include_str!("inline.rs"), 1),
    ("spawned.rs", include_str!("spawned.rs"), 1),
    ("durable.rs", include_str!("durable.rs"), 2),
    ("unique.rs", include_str!("unique.rs"), 1),
];

/// Words that are followed by a group without being a call.
const KEYWORDS: &[&str] = &[
    "if", "match", "loop", "move", "async", "while", "for", "in", "return", "break", "else",
    "unsafe", "let", "mut", "static", "as", "use", "fn",
];

/// The sketches of a file: (input, output).
fn sketches(src: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut lines = src.lines().peekable();
    while let Some(l) = lines.next() {
        if l != "// Input:" {
            continue;
        }
        let mut input = String::new();
        let mut output = String::new();
        let mut in_output = false;
        while let Some(l) = lines.next_if(|l| l.starts_with("//     ") || *l == "// Output:") {
            if l == "// Output:" {
                in_output = true;
            } else if in_output {
                output.push_str(&l[7..]);
                output.push('\n');
            } else {
                input.push_str(&l[7..]);
                input.push('\n');
            }
        }
        out.push((input, output));
    }
    out
}

/// One token of the normalized text.
#[derive(Clone, PartialEq, Debug)]
enum Atom {
    Word(String),
    Punct(char),
    /// Any tokens (a placeholder of a sketch).
    Any,
}

/// The tokens, flattened (a group is its delimiters around its atoms), with placeholders
/// turned into [`Atom::Any`] when `sketch`.
fn flatten(tokens: TokenStream, sketch: bool, out: &mut Vec<Atom>) {
    let mut iter = tokens.into_iter().peekable();
    while let Some(t) = iter.next() {
        match t {
            TokenTree::Ident(i) => {
                let s = i.to_string();
                let placeholder = sketch
                    && !s.starts_with("__")
                    && s.chars()
                        .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_');
                if placeholder {
                    // `BODY(id)`: the placeholder's arguments are part of it.
                    if matches!(iter.peek(), Some(TokenTree::Group(g)) if g.delimiter() == Delimiter::Parenthesis)
                    {
                        iter.next();
                    }
                    out.push(Atom::Any);
                } else {
                    let s = s.strip_prefix("__retry_").unwrap_or(&s).to_string();
                    out.push(Atom::Word(s));
                }
            }
            TokenTree::Literal(l) => {
                let s = l.to_string();
                let numeric = s.starts_with(|c: char| c.is_ascii_digit());
                let s = if numeric {
                    ["u32", "u64", "f64", "usize"]
                        .iter()
                        .find_map(|suffix| s.strip_suffix(suffix))
                        .unwrap_or(&s)
                        .to_string()
                } else {
                    s
                };
                out.push(Atom::Word(s));
            }
            TokenTree::Punct(p) => {
                let dots = p.as_char() == '.'
                    && matches!(iter.peek(), Some(TokenTree::Punct(q)) if q.as_char() == '.');
                if sketch && dots {
                    iter.next();
                    out.push(Atom::Any);
                } else {
                    out.push(Atom::Punct(p.as_char()));
                }
            }
            TokenTree::Group(g) => {
                let (open, close) = match g.delimiter() {
                    Delimiter::Parenthesis => (Some('('), Some(')')),
                    Delimiter::Brace => (Some('{'), Some('}')),
                    Delimiter::Bracket => (Some('['), Some(']')),
                    Delimiter::None => (None, None),
                };
                out.extend(open.map(Atom::Punct));
                flatten(g.stream(), sketch, out);
                out.extend(close.map(Atom::Punct));
            }
        }
    }
}

fn is_word(a: Option<&Atom>) -> bool {
    matches!(a, Some(Atom::Word(_)))
}

/// Drops a path's leading `::` and its module segments (lower-case words followed by `::`
/// and a word), the `Option::`/`Result::` of their variants, and trailing commas.
fn shorten_paths(atoms: &[Atom]) -> Vec<Atom> {
    let colons = |i: usize| {
        atoms.get(i) == Some(&Atom::Punct(':')) && atoms.get(i + 1) == Some(&Atom::Punct(':'))
    };
    let mut out: Vec<Atom> = Vec::new();
    let mut i = 0;
    while i < atoms.len() {
        let after_path = match out.last() {
            Some(Atom::Word(w)) => !KEYWORDS.contains(&w.as_str()),
            // `Vec<T>::new`, not `-> ::T` or `=> ::T`.
            last => {
                last == Some(&Atom::Punct('>'))
                    && out.len() >= 2
                    && !matches!(out[out.len() - 2], Atom::Punct('-' | '='))
            }
        };
        let leading = colons(i) && is_word(atoms.get(i + 2)) && !after_path;
        if leading {
            i += 2;
            continue;
        }
        if let Atom::Word(w) = &atoms[i] {
            let module = (w.starts_with(|c: char| c.is_ascii_lowercase() || c == '_')
                && !KEYWORDS.contains(&w.as_str()))
                || w == "Option"
                || w == "Result";
            if module && colons(i + 1) && is_word(atoms.get(i + 3)) {
                i += 3;
                continue;
            }
        }
        let trailing_comma = atoms[i] == Atom::Punct(',')
            && matches!(atoms.get(i + 1), Some(Atom::Punct(')' | '}' | ']')));
        if !trailing_comma {
            out.push(atoms[i].clone());
        }
        i += 1;
    }
    out
}

fn normalize(tokens: TokenStream, sketch: bool) -> Vec<Atom> {
    let mut atoms = Vec::new();
    flatten(tokens, sketch, &mut atoms);
    shorten_paths(&atoms)
}

/// The atoms as text, with a space only between two words; [`Atom::Any`] is `\0`.
fn text(atoms: &[Atom]) -> String {
    let mut s = String::new();
    let mut last_word = false;
    for a in atoms {
        match a {
            Atom::Word(w) => {
                if last_word {
                    s.push(' ');
                }
                s.push_str(w);
            }
            Atom::Punct(c) => s.push(*c),
            Atom::Any => s.push('\0'),
        }
        last_word = matches!(a, Atom::Word(_));
    }
    s
}

/// Whether `text` holds a match of `pattern`, whose `\0`s match any text.
fn contains(text: &str, pattern: &str) -> bool {
    let mut at = 0;
    for piece in pattern.split('\0') {
        match text[at..].find(piece) {
            Some(i) => at += i + piece.len(),
            None => return false,
        }
    }
    true
}

/// Every call, macro call and struct literal of a sketch's output, with its path: a word
/// (not a keyword) followed by `(`, `{` or `!`, up to the end of its group.
fn uses(atoms: &[Atom]) -> Vec<String> {
    let mut out = Vec::new();
    for (i, a) in atoms.iter().enumerate() {
        let Atom::Word(w) = a else { continue };
        if KEYWORDS.contains(&w.as_str()) {
            continue;
        }
        let mut open = i + 1;
        if atoms.get(open) == Some(&Atom::Punct('!')) {
            open += 1;
        }
        let close = match atoms.get(open) {
            Some(Atom::Punct('(')) => ')',
            Some(Atom::Punct('{')) => '}',
            _ => continue,
        };
        let Atom::Punct(opening) = atoms[open] else {
            continue;
        };
        let mut depth = 0;
        let mut end = open;
        for (j, a) in atoms.iter().enumerate().skip(open) {
            if *a == Atom::Punct(opening) {
                depth += 1;
            } else if *a == Atom::Punct(close) {
                depth -= 1;
                if depth == 0 {
                    end = j;
                    break;
                }
            }
        }
        let mut start = i;
        while start >= 3
            && atoms[start - 1] == Atom::Punct(':')
            && atoms[start - 2] == Atom::Punct(':')
            && is_word(atoms.get(start - 3))
        {
            start -= 3;
        }
        out.push(text(&atoms[start..=end]));
    }
    out
}

#[test]
fn every_sketch_call_is_in_the_expansion_with_its_arguments() {
    for (file, src, count) in SOURCES {
        let all = sketches(src);
        assert_eq!(all.len(), *count, "the sketches of {file}");
        for (input, output) in all {
            let (attr, item) = input
                .split_once('\n')
                .expect("an attribute line, then the fn");
            let args = attr
                .trim()
                .strip_prefix("#[retry(")
                .and_then(|a| a.strip_suffix(")]"))
                .expect("the input starts with #[retry(...)]");
            let args: TokenStream = args.parse().expect("the arguments parse");
            let item: TokenStream = item.parse().expect("the function parses");
            let expanded = text(&normalize(super::retry(args, &item), false));
            let sketch: TokenStream = output.parse().expect("the sketch is tokens");
            let uses = uses(&normalize(sketch, true));
            assert!(
                uses.len() > 10,
                "the sketch in {file} shows the calls: {uses:?}"
            );
            let missing: Vec<_> = uses.iter().filter(|u| !contains(&expanded, u)).collect();
            assert!(
                missing.is_empty(),
                "the sketch of `{attr}` in {file} shows {missing:#?}, which its expansion does not \
                 have; the expansion, normalized:\n{expanded}"
            );
        }
    }
}

#[test]
fn normalizing_shortens_paths_and_names() {
    let tokens: TokenStream = "::retry_runtime::__private::durable::enqueue(::core::option::Option::Some(10u32), __retry_out as ::m::T, Step::Done(x),)"
        .parse()
        .unwrap();
    assert_eq!(
        text(&normalize(tokens, false)),
        "enqueue(Some(10),out as T,Step::Done(x))"
    );
    let sketch: TokenStream = "f(NAME, BODY(id), ..)".parse().unwrap();
    let pattern = text(&normalize(sketch, true));
    assert_eq!(pattern, "f(\0,\0,\0)");
    assert!(contains("g();f(a,{b(c)},d)", &pattern));
    assert!(!contains("f(a)", &pattern));
}
