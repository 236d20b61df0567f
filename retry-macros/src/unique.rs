//! `unique = ...`, `unique_key = ...` and `unique_for = ...` of a durable function, through
//! every stage: the parse of `unique`'s value, the rules, the plan, and the key's expression.

use syn::{Expr, FnArg, Ident, Lit, Pat, Signature};

use crate::attr::{nearest, Args, DurationArg, Errors, Keyed, Persist};
use crate::plan::Mode;

/// `unique = ...` as written.
pub enum UniqueArg {
    /// `unique = "args"`: every argument.
    Args,
    /// `unique = (id, region)` or `unique = id`: the arguments named.
    Named(Vec<Ident>),
}

const HOW: &str = "`unique` takes `\"args\"` (every argument) or argument names \
    (`unique = id`, `unique = (id, region)`); for a key computed from the arguments, use \
    `unique_key = <expression>`";

/// Parses `unique`'s value.
pub fn parse(value: &Expr, errors: &mut Errors) -> Option<UniqueArg> {
    let name = |e: &Expr| match e {
        Expr::Path(p) if p.qself.is_none() && p.attrs.is_empty() => p.path.get_ident().cloned(),
        _ => None,
    };
    match value {
        Expr::Lit(l) => match &l.lit {
            Lit::Str(s) if s.value() == "args" => Some(UniqueArg::Args),
            Lit::Str(s) => {
                let v = s.value();
                let names: Vec<&str> = v.split(',').map(str::trim).collect();
                let hint = if names.iter().all(|n| syn::parse_str::<Ident>(n).is_ok()) {
                    format!("; to name arguments, write them without quotes: `unique = ({v})`")
                } else {
                    String::new()
                };
                errors.at(s.span(), format!("unknown `unique = \"{v}\"`: {HOW}{hint}"));
                None
            }
            _ => {
                errors.on(value, HOW);
                None
            }
        },
        Expr::Group(g) => parse(&g.expr, errors),
        Expr::Paren(p) => {
            let id = name(&p.expr);
            if id.is_none() {
                errors.on(&p.expr, HOW);
            }
            id.map(|id| UniqueArg::Named(vec![id]))
        }
        Expr::Tuple(t) if t.elems.is_empty() => {
            errors.on(
                value,
                "`unique = ()` names no argument, so every call would be the same one; name \
                 some (`unique = (id)`) or use `unique = \"args\"`",
            );
            None
        }
        Expr::Tuple(t) => {
            let mut ids = Vec::new();
            for e in &t.elems {
                match name(e) {
                    Some(id) => ids.push(id),
                    None => errors.on(e, HOW),
                }
            }
            (ids.len() == t.elems.len()).then_some(UniqueArg::Named(ids))
        }
        e => {
            let id = name(e);
            if id.is_none() {
                errors.on(value, HOW);
            }
            id.map(|id| UniqueArg::Named(vec![id]))
        }
    }
}

/// The rules: durable only, with `persist = "always"`; `unique` or `unique_key`, not both;
/// `unique_for` with one of them; names that are arguments, once each.
pub fn check(args: &Args, mode: Mode, sig: &Signature, errors: &mut Errors) {
    let keys = [
        ("unique", args.unique.as_ref().map(|k| k.key)),
        ("unique_key", args.unique_key.as_ref().map(|k| k.key)),
        ("unique_for", args.unique_for.as_ref().map(|k| k.key)),
    ];
    let Mode::Durable { persist } = mode else {
        for (key, span) in keys {
            if let Some(span) = span {
                errors.at(
                    span,
                    format!(
                        "`{key}` makes equal durable calls one stored call; it needs \
                         `mode = \"durable\"`"
                    ),
                );
            }
        }
        return;
    };
    if persist == Persist::OnFailure {
        for (key, span) in keys.iter().take(2) {
            if let Some(span) = span {
                errors.at(
                    *span,
                    format!(
                        "`{key}` needs `persist = \"always\"`: with `persist = \"on_failure\"` \
                         the first attempt runs before the call is stored, so an equal call \
                         could not be found in time; remove `persist` or `{key}`"
                    ),
                );
            }
        }
    }
    if let (Some(u), Some(k)) = (&args.unique, &args.unique_key) {
        let later = if args.order_of("unique_key") > args.order_of("unique") {
            k.key
        } else {
            u.key
        };
        errors.at(
            later,
            "`unique` and `unique_key` both say what makes two calls the same; keep one \
             (`unique = (id)` keys by arguments, `unique_key = expr` by a value computed from them)",
        );
    }
    if let Some(f) = &args.unique_for {
        if args.unique.is_none() && args.unique_key.is_none() {
            errors.at(
                f.key,
                "`unique_for` says how long a finished call still counts as the same; it needs \
                 `unique = ...` or `unique_key = ...`, like `unique = \"args\", unique_for = \"1h\"`",
            );
        }
    }
    if let Some(Keyed {
        value: UniqueArg::Named(names),
        ..
    }) = &args.unique
    {
        check_names(names, sig, errors);
    }
}

fn check_names(names: &[Ident], sig: &Signature, errors: &mut Errors) {
    let params: Vec<String> = sig
        .inputs
        .iter()
        .filter_map(|a| match a {
            FnArg::Typed(pt) => match &*pt.pat {
                Pat::Ident(pi) => Some(pi.ident.to_string()),
                _ => None,
            },
            FnArg::Receiver(_) => None,
        })
        .collect();
    let listed: Vec<&str> = params.iter().map(String::as_str).collect();
    for (i, id) in names.iter().enumerate() {
        let name = id.to_string();
        if !listed.contains(&name.as_str()) {
            let hint = match nearest(&name, &listed) {
                Some(n) => format!("did you mean `{n}`?"),
                None if listed.is_empty() => "the function has no arguments; use \
                    `unique_key = <expression>` for a key of your own"
                    .to_string(),
                None => format!("its arguments are: {}", listed.join(", ")),
            };
            errors.at(
                id.span(),
                format!(
                    "`unique` names `{name}`, which is not an argument of the function; {hint}"
                ),
            );
        } else if names[..i].contains(id) {
            errors.at(
                id.span(),
                format!("`unique` names `{name}` twice; keep one"),
            );
        }
    }
}

/// What makes two calls the same, resolved.
pub struct Unique {
    pub key: UniqueKey,
    pub keep_for: Option<DurationArg>,
}

pub enum UniqueKey {
    Args,
    Named(Vec<Ident>),
    Expr(Box<Expr>),
}

/// The plan's part, from an attribute that passed the checks.
pub fn plan(args: &mut Args) -> Option<Unique> {
    let key = match (args.unique.take(), args.unique_key.take()) {
        (Some(u), _) => match u.value {
            UniqueArg::Args => UniqueKey::Args,
            UniqueArg::Named(names) => UniqueKey::Named(names),
        },
        (None, Some(k)) => UniqueKey::Expr(Box::new(k.value)),
        (None, None) => return None,
    };
    Some(Unique {
        key,
        keep_for: args.unique_for.take().map(|f| f.value),
    })
}
