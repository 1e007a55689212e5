//! Web-search syntax → an FTS5 `MATCH` expression that reads like Postgres'
//! `websearch_to_tsquery('simple', q)` and cannot be a syntax error, whatever `q` holds.
//!
//! The syntax, as Postgres reads it:
//! - words must all match: `card declined`;
//! - `"quoted phrases"` match in order (an unclosed quote runs to the end);
//! - `-word` or `-"phrase"` excludes (`--word` is the word again);
//! - the characters of tsquery syntax (`: | & ! ( ) <`) separate words: `x:y` is `x y`;
//! - `or` between two operands is an alternative, binding looser than the implicit "and":
//!   `a b or c` is `(a and b) or c`; an `or` with no operand before it, or nothing after it,
//!   is the word "or".
//!
//! Each word or phrase becomes its lexemes, the runs of letters and digits (`ord-7f3a9` is
//! the phrase `ord 7f3a9`, `user_7` the phrase `user 7`); one with none (`!!!`, `*`, `(`) is
//! dropped with its `-`, as Postgres drops it. Every lexeme goes into the expression inside a
//! double-quoted FTS5 string holding nothing but letters, digits and spaces, so FTS5
//! operators and syntax typed by the user (`NEAR`, `AND`, `*`, `^`, `:`, `(`, quotes) are
//! only ever words or separators.

/// A word or quoted phrase of the query: its lexemes, in order, and whether it is excluded.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Operand {
    lexemes: Vec<String>,
    negated: bool,
}

/// What the scanner yields: an operand or an `or` operator.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Item {
    Operand(Operand),
    Or,
}

/// A parsed query: alternatives (`or`) of conjunctions of operands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct WebSearch {
    any_of: Vec<Vec<Operand>>,
}

impl WebSearch {
    /// Parse `query`. Never fails: what is not syntax is a word or a separator.
    pub(super) fn parse(query: &str) -> Self {
        let mut any_of = Vec::new();
        let mut all_of = Vec::new();
        for item in scan(query) {
            match item {
                Item::Operand(op) if op.lexemes.is_empty() => {}
                Item::Operand(op) => all_of.push(op),
                Item::Or => {
                    if !all_of.is_empty() {
                        any_of.push(std::mem::take(&mut all_of));
                    }
                }
            }
        }
        if !all_of.is_empty() {
            any_of.push(all_of);
        }
        Self { any_of }
    }

    /// The FTS5 expression over `search_fts` (columns `body` and `ns`) that matches the
    /// documents of namespace `ns_token` (the hex of its name, as the `ns` column holds it)
    /// this query matches; `None` when the query has no lexemes and matches nothing.
    ///
    /// The namespace's token is required once for all alternatives, not once in each: FTS5
    /// reads a phrase's whole doclist for every time it appears (BM25 counts its documents),
    /// and the namespace's phrase matches every document of the namespace, so repeating it
    /// would make a query of `n` alternatives cost `n` × the namespace's size. Alternatives of
    /// exclusions only (`-test`: every document of the namespace but those, as on Postgres)
    /// need it as their positive side; they are merged into one, `ns NOT (E1 AND E2 …)`, as
    /// `(ns NOT E1) OR (ns NOT E2)` is. So the token appears at most twice, and the
    /// expression grows linearly with the query.
    pub(super) fn to_fts5(&self, ns_token: &str) -> Option<String> {
        let namespace = format!("ns:{}", quote([ns_token]));
        let mut alternatives = Vec::new();
        let mut excluded_only = Vec::new();
        for all_of in &self.any_of {
            let required: Vec<String> =
                all_of.iter().filter(|op| !op.negated).map(phrase).collect();
            let excluded: Vec<String> = all_of.iter().filter(|op| op.negated).map(phrase).collect();
            let (required, excluded) = (required.join(" AND "), excluded.join(" OR "));
            match (required.is_empty(), excluded.is_empty()) {
                (true, _) => excluded_only.push(format!("({excluded})")),
                (false, true) => alternatives.push(format!("({required})")),
                (false, false) => alternatives.push(format!("(({required}) NOT ({excluded}))")),
            }
        }
        let any = (!alternatives.is_empty())
            .then(|| format!("({namespace} AND ({}))", alternatives.join(" OR ")));
        let but = (!excluded_only.is_empty())
            .then(|| format!("({namespace} NOT ({}))", excluded_only.join(" AND ")));
        match (any, but) {
            (Some(any), Some(but)) => Some(format!("{any} OR {but}")),
            (any, but) => any.or(but),
        }
    }
}

/// `body:"lexeme lexeme …"`: an operand as an FTS5 phrase in the body column.
fn phrase(op: &Operand) -> String {
    format!("body:{}", quote(&op.lexemes))
}

/// Tokens as one double-quoted FTS5 string. Tokens hold only letters and digits, but quotes
/// are doubled anyway, so the string can never end early.
fn quote<S: AsRef<str>>(tokens: impl IntoIterator<Item = S>) -> String {
    let inner: Vec<String> = tokens
        .into_iter()
        .map(|t| t.as_ref().replace('"', "\"\""))
        .collect();
    format!("\"{}\"", inner.join(" "))
}

/// The lexemes of `text`: its runs of letters and digits.
fn lexemes(text: &str) -> Vec<String> {
    text.split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .map(str::to_owned)
        .collect()
}

/// Split `query` into operands and `or` operators, the way `websearch_to_tsquery` does.
fn scan(query: &str) -> Vec<Item> {
    let chars: Vec<char> = query.chars().collect();
    let mut items = Vec::new();
    let mut negated = false;
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c.is_whitespace() || OPERATORS.contains(&c) {
            i += 1;
        } else if c == '-' && (i == 0 || chars[i - 1].is_whitespace() || chars[i - 1] == '-') {
            // `-` before an operand excludes it, even across spaces (`a - b`); `--` cancels
            negated = !negated;
            i += 1;
        } else if c == '"' {
            let end = chars[i + 1..]
                .iter()
                .position(|&c| c == '"')
                .map_or(chars.len(), |p| i + 1 + p);
            let text: String = chars[i + 1..end].iter().collect();
            items.push(operand(&text, negated));
            negated = false;
            i = end + 1;
        } else {
            let start = i;
            while i < chars.len() && !ends_word(chars[i]) {
                i += 1;
            }
            let word: String = chars[start..i].iter().collect();
            // `or` is the operator right after an operand (one without lexemes too: `* or a`
            // is `a`), never last; the look back is one item and the look ahead stops at the
            // next word, so the scan stays linear in the query's length
            let after_operand = matches!(items.last(), Some(Item::Operand(_)));
            if !negated
                && after_operand
                && word.eq_ignore_ascii_case("or")
                && !chars[i..].iter().all(|c| c.is_whitespace())
            {
                items.push(Item::Or);
            } else {
                items.push(operand(&word, negated));
            }
            negated = false;
        }
    }
    items
}

/// The characters of tsquery syntax, which end a word where Postgres' web-search parser
/// meets them (`x:y` is `x` and `y`, where `x-y` is the phrase `x y`).
const OPERATORS: [char; 7] = [':', '|', '&', '!', '(', ')', '<'];

fn ends_word(c: char) -> bool {
    c.is_whitespace() || c == '"' || OPERATORS.contains(&c)
}

fn operand(text: &str, negated: bool) -> Item {
    Item::Operand(Operand {
        lexemes: lexemes(text),
        negated,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The parsed query in tsquery notation, to compare with what Postgres prints for
    /// `websearch_to_tsquery('simple', q)` (its compound-word lexemes aside).
    fn tsquery(q: &str) -> String {
        WebSearch::parse(q)
            .any_of
            .iter()
            .map(|all_of| {
                all_of
                    .iter()
                    .map(|op| {
                        let quoted: Vec<String> =
                            op.lexemes.iter().map(|l| format!("'{l}'")).collect();
                        let phrase = quoted.join(" <-> ");
                        match (op.negated, op.lexemes.len()) {
                            (false, _) => phrase,
                            (true, 1) => format!("!{phrase}"),
                            (true, _) => format!("!( {phrase} )"),
                        }
                    })
                    .collect::<Vec<_>>()
                    .join(" & ")
            })
            .collect::<Vec<_>>()
            .join(" | ")
    }

    #[test]
    fn queries_parse_as_websearch_to_tsquery_does() {
        // expectations printed by Postgres 15
        for (q, expected) in [
            ("a b or c", "'a' & 'b' | 'c'"),
            ("a or b c", "'a' | 'b' & 'c'"),
            ("-foo", "!'foo'"),
            ("a -\"b c\"", "'a' & !( 'b' <-> 'c' )"),
            ("\"a b\" or \"c d\"", "'a' <-> 'b' | 'c' <-> 'd'"),
            ("or a", "'or' & 'a'"),
            ("a or", "'a' & 'or'"),
            ("a OR b", "'a' | 'b'"),
            ("a or or b", "'a' | 'or' & 'b'"),
            ("\"unclosed a b", "'unclosed' <-> 'a' <-> 'b'"),
            ("a - b", "'a' & !'b'"),
            ("a -", "'a'"),
            ("x -- y", "'x' & 'y'"),
            ("a or -b", "'a' | !'b'"),
            ("!!! or a", "'or' & 'a'"),
            ("a or !!!", "'a'"),
            ("a or !!! b", "'a' | 'b'"),
            ("a -!!!", "'a'"),
            ("a\"b c\"d", "'a' & 'b' <-> 'c' & 'd'"),
            ("\"a -b or c\"", "'a' <-> 'b' <-> 'or' <-> 'c'"),
            ("a (b", "'a' & 'b'"),
            ("x:y", "'x' & 'y'"),
            ("a|b", "'a' & 'b'"),
            ("a*b", "'a' <-> 'b'"),
            ("a:-b", "'a' & 'b'"),
            ("a -b:c", "'a' & !'b' & 'c'"),
            ("x:\"y z\"", "'x' & 'y' <-> 'z'"),
            ("it's", "'it' <-> 's'"),
            ("héllo 日本語", "'héllo' & '日本語'"),
            ("!!!", ""),
            ("\"\" \"!!\"", ""),
            // an operand without lexemes is an operand before `or`
            ("* or a", "'a'"),
            ("a or * or b", "'a' | 'b'"),
            ("a or * or", "'a' | 'or'"),
            ("\"\" or a", "'a'"),
            ("-* or a", "'a'"),
            ("* or or a", "'or' & 'a'"),
            ("a or - or b", "'a' | !'or' & 'b'"),
        ] {
            assert_eq!(tsquery(q), expected, "{q:?}");
        }
    }

    #[test]
    fn expressions_require_the_namespace_in_every_alternative() {
        let fts = |q: &str| WebSearch::parse(q).to_fts5("41").unwrap();
        assert_eq!(fts("ord-7f3a9"), r#"(ns:"41" AND ((body:"ord 7f3a9")))"#);
        assert_eq!(
            fts("a -b or c d"),
            r#"(ns:"41" AND (((body:"a") NOT (body:"b")) OR (body:"c" AND body:"d")))"#
        );
        assert_eq!(
            fts("a -b or -c"),
            r#"(ns:"41" AND (((body:"a") NOT (body:"b")))) OR (ns:"41" NOT ((body:"c")))"#
        );
        // (ns NOT c) OR (ns NOT (d OR e)) is ns NOT (c AND (d OR e))
        assert_eq!(
            fts("-c or -d -e"),
            r#"(ns:"41" NOT ((body:"c") AND (body:"d" OR body:"e")))"#
        );
        assert_eq!(WebSearch::parse("*** ()").to_fts5("41"), None);
    }

    #[test]
    fn many_alternatives_share_one_namespace_token() {
        let words: Vec<String> = (0..200).map(|i| format!("w{i}")).collect();
        let expr = WebSearch::parse(&words.join(" or ")).to_fts5("41").unwrap();
        let alternatives: Vec<String> = words.iter().map(|w| format!("(body:\"{w}\")")).collect();
        assert_eq!(
            expr,
            format!(r#"(ns:"41" AND ({}))"#, alternatives.join(" OR "))
        );
        // exclusions-only alternatives merge into one: at most two namespace tokens, and the
        // expression grows by a constant per operand, whatever the mix
        for unit in [
            "x or ",
            "-x or ",
            "x -y or ",
            "\"x y\" or ",
            "* or x ",
            "x:y|z ",
        ] {
            let sizes: Vec<(usize, usize)> = [10, 100, 1000]
                .into_iter()
                .map(|n| {
                    let q = unit.repeat(n);
                    let expr = WebSearch::parse(&q).to_fts5("41").unwrap();
                    assert!(expr.matches("ns:").count() <= 2, "{unit:?} x {n}: {expr}");
                    (q.len(), expr.len())
                })
                .collect();
            for (q_len, expr_len) in sizes {
                assert!(
                    expr_len <= 40 + 8 * q_len,
                    "{unit:?}: {q_len} -> {expr_len}"
                );
            }
        }
    }

    #[test]
    fn hostile_input_only_ever_yields_quoted_letters_and_digits() {
        for q in [
            "\"",
            "\"\"\"",
            "(",
            ")",
            "*",
            "a*",
            "NEAR(a b)",
            "NEAR",
            "a AND b NOT c",
            "body:x",
            "ns:41 OR x",
            "^a",
            "{body ns}: x",
            "-",
            "a \" b",
            "'; drop table search_documents; --",
            "x\0y",
            "ﬁ ǅ Ⅻ ½ ٣",
        ] {
            let Some(expr) = WebSearch::parse(q).to_fts5("41") else {
                continue;
            };
            // outside the quoted strings: only the structure this module writes
            let outside: String = expr.split('"').step_by(2).collect();
            let structure = outside
                .replace("ns:", "")
                .replace("body:", "")
                .replace("AND", "")
                .replace("NOT", "")
                .replace("OR", "");
            assert!(
                structure.chars().all(|c| c == '(' || c == ')' || c == ' '),
                "{q:?} -> {expr}"
            );
            // inside them: letters, digits and spaces
            for inside in expr.split('"').skip(1).step_by(2) {
                assert!(
                    inside.chars().all(|c| c.is_alphanumeric() || c == ' '),
                    "{q:?} -> {expr}"
                );
            }
        }
    }
}
