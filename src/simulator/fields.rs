//! Graph field expressions: the `fields` query parameter of a node read.
//!
//! Graph lets a requested field carry chained modifiers, `name.modifier(argument)`, whose
//! argument is a scalar or a bracketed list:
//! `id,analytics.start(1641024000).end(1651094880).granularity(DAY).phone_numbers(["16315551000"])`.
//! Clients differ in how they write list items (double-quoted, single-quoted or bare), so all of
//! those are accepted, and so is a list without brackets, `dimensions(COUNTRY,PHONE)`, the form
//! Meta's own WhatsApp examples use (a single bare value stays a scalar). Anything else, including Graph's nested `field{subfield}` syntax, which
//! the simulator does not need, is a syntax error that the caller answers with code 100.

/// One requested field with its modifiers, in request order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Field {
    /// The field name, e.g. `analytics`.
    pub(crate) name: String,
    /// The modifiers, e.g. `start(1641024000)`.
    pub(crate) modifiers: Vec<Modifier>,
}

/// A `.name(argument)` modifier of a field.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Modifier {
    /// The modifier name, e.g. `granularity`.
    pub(crate) name: String,
    /// Its argument.
    pub(crate) argument: Argument,
}

/// A modifier's argument, with any quotes removed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Argument {
    /// A single value: `DAY`, `1641024000`.
    Scalar(String),
    /// A bracketed list: `["16315551000", "16315551001"]`.
    List(Vec<String>),
}

/// Parses a whole `fields` value; the error says what was expected where.
pub(crate) fn parse(text: &str) -> Result<Vec<Field>, String> {
    let mut parser = Parser {
        chars: text.chars().collect(),
        position: 0,
    };
    let mut fields = vec![parser.field()?];
    loop {
        parser.skip_whitespace();
        match parser.next() {
            None => return Ok(fields),
            Some(',') => fields.push(parser.field()?),
            Some(other) => return Err(parser.unexpected(other, "',' or the end")),
        }
    }
}

/// A recursive-descent parser over the characters of one `fields` value.
struct Parser {
    chars: Vec<char>,
    position: usize,
}

impl Parser {
    fn peek(&self) -> Option<char> {
        self.chars.get(self.position).copied()
    }

    fn next(&mut self) -> Option<char> {
        let next = self.peek();
        if next.is_some() {
            self.position += 1;
        }
        next
    }

    fn skip_whitespace(&mut self) {
        while self.peek().is_some_and(char::is_whitespace) {
            self.position += 1;
        }
    }

    /// The error for `found`, just consumed, where `expected` should have been.
    fn unexpected(&self, found: char, expected: &str) -> String {
        format!(
            "expected {expected} but found '{found}' at character {}",
            self.position.saturating_sub(1)
        )
    }

    fn require(&mut self, wanted: char) -> Result<(), String> {
        self.skip_whitespace();
        match self.next() {
            Some(found) if found == wanted => Ok(()),
            Some(found) => Err(self.unexpected(found, &format!("'{wanted}'"))),
            None => Err(format!("expected '{wanted}' but the expression ended")),
        }
    }

    /// A run of characters satisfying `accept`; `what` names it for the error.
    fn word(&mut self, accept: fn(char) -> bool, what: &str) -> Result<String, String> {
        self.skip_whitespace();
        let start = self.position;
        while self.peek().is_some_and(accept) {
            self.position += 1;
        }
        if self.position > start {
            return Ok(self.chars[start..self.position].iter().collect());
        }
        match self.next() {
            Some(found) => Err(self.unexpected(found, what)),
            None => Err(format!("expected {what} but the expression ended")),
        }
    }

    fn identifier(&mut self) -> Result<String, String> {
        self.word(|c| c.is_ascii_alphanumeric() || c == '_', "a field name")
    }

    fn field(&mut self) -> Result<Field, String> {
        let name = self.identifier()?;
        let mut modifiers = Vec::new();
        loop {
            self.skip_whitespace();
            if self.peek() != Some('.') {
                return Ok(Field { name, modifiers });
            }
            self.position += 1;
            let name = self.identifier()?;
            self.require('(')?;
            let argument = self.argument()?;
            self.require(')')?;
            modifiers.push(Modifier { name, argument });
        }
    }

    fn argument(&mut self) -> Result<Argument, String> {
        self.skip_whitespace();
        if self.peek() != Some('[') {
            let first = self.item()?;
            self.skip_whitespace();
            if self.peek() != Some(',') {
                return Ok(Argument::Scalar(first));
            }
            // An unbracketed list: items up to the closing parenthesis, left for the caller.
            let mut items = vec![first];
            while self.peek() == Some(',') {
                self.position += 1;
                items.push(self.item()?);
                self.skip_whitespace();
            }
            return Ok(Argument::List(items));
        }
        self.position += 1;
        let mut items = Vec::new();
        self.skip_whitespace();
        if self.peek() == Some(']') {
            self.position += 1;
            return Ok(Argument::List(items));
        }
        loop {
            items.push(self.item()?);
            self.skip_whitespace();
            match self.next() {
                Some(',') => {}
                Some(']') => return Ok(Argument::List(items)),
                Some(found) => return Err(self.unexpected(found, "',' or ']'")),
                None => return Err("expected ']' but the expression ended".to_owned()),
            }
        }
    }

    /// A quoted string (either quote) or a bare value such as `16315551000`, `+1631`, `US`.
    fn item(&mut self) -> Result<String, String> {
        self.skip_whitespace();
        let Some(quote @ ('"' | '\'')) = self.peek() else {
            return self.word(
                |c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '+'),
                "a value",
            );
        };
        self.position += 1;
        let mut value = String::new();
        loop {
            match self.next() {
                Some(c) if c == quote => return Ok(value),
                Some(c) => value.push(c),
                None => return Err(format!("unterminated {quote}-quoted string")),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn list(items: &[&str]) -> Argument {
        Argument::List(items.iter().map(|item| (*item).to_owned()).collect())
    }

    #[test]
    fn analytics_with_all_modifiers_parses_in_order() {
        let fields = parse("id,analytics.start(1641024000).end(1651094880).granularity(DAY).country_codes([US, 'IN'])")
            .expect("valid expression");
        assert_eq!(fields.len(), 2);
        assert_eq!(
            fields[0],
            Field {
                name: "id".into(),
                modifiers: vec![]
            }
        );
        let names: Vec<&str> = fields[1]
            .modifiers
            .iter()
            .map(|m| m.name.as_str())
            .collect();
        assert_eq!(names, ["start", "end", "granularity", "country_codes"]);
        assert_eq!(
            fields[1].modifiers[2].argument,
            Argument::Scalar("DAY".into())
        );
        assert_eq!(fields[1].modifiers[3].argument, list(&["US", "IN"]));
    }

    #[test]
    fn quoted_and_bare_phone_numbers_parse_alike() {
        let quoted = parse(r#"analytics.phone_numbers(["16315551000", "16315551001"])"#);
        let bare = parse("analytics.phone_numbers([16315551000,16315551001])");
        let spaced = parse("analytics . phone_numbers( [ '16315551000' , 16315551001 ] )");
        assert_eq!(quoted, bare);
        assert_eq!(quoted, spaced);
        let fields = quoted.expect("valid expression");
        assert_eq!(
            fields[0].modifiers[0].argument,
            list(&["16315551000", "16315551001"])
        );
    }

    #[test]
    fn unbracketed_lists_parse_like_bracketed_ones() {
        let bare = parse(
            "pricing_analytics.dimensions(PRICING_CATEGORY, PRICING_TYPE).granularity(DAILY),name",
        )
        .expect("valid expression");
        let bracketed = parse(r#"pricing_analytics.dimensions(["PRICING_CATEGORY","PRICING_TYPE"]).granularity(DAILY),name"#)
            .expect("valid expression");
        assert_eq!(bare, bracketed);
        assert_eq!(
            bare[0].modifiers[0].argument,
            list(&["PRICING_CATEGORY", "PRICING_TYPE"])
        );
        assert_eq!(
            bare[0].modifiers[1].argument,
            Argument::Scalar("DAILY".into())
        );
        assert_eq!(bare[1].name, "name");
        for text in ["x.dimensions(A,)", "x.dimensions(A,B", "x.dimensions(A B)"] {
            assert!(parse(text).is_err(), "{text:?} parsed");
        }
    }

    #[test]
    fn malformed_expressions_are_errors() {
        for text in [
            "",
            "analytics.start(1",
            "analytics.start()",
            "analytics.phone_numbers([\"1631)",
            "analytics.phone_numbers([1,,2])",
            "analytics{data_points}",
            "analytics.start(1)x",
            "id,",
        ] {
            assert!(parse(text).is_err(), "{text:?} parsed");
        }
    }
}
