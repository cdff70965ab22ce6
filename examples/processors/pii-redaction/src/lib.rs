//! Masks personal data in record values: the local part of every email address
//! (`jane.doe@example.com` becomes `***@example.com`) and all but the last four digits of
//! every card number (13 to 19 digits, spaces or dashes between them, passing the Luhn
//! check). Values that are not UTF-8 pass unchanged; keys and headers are kept.
//!
//! ```text
//! fjord processor deploy redact --input payments --output payments-clean pii_redaction.wasm
//! ```

use fjord_sdk::shapes::MapFn;
use fjord_sdk::{Config, Error, Output, Record};

#[derive(Debug)]
pub struct Redact;

impl MapFn for Redact {
    fn init(_config: &Config) -> Result<Self, String> {
        Ok(Redact)
    }

    fn map(&mut self, record: &Record) -> Result<Output, Error> {
        let mut output = record.forward();
        if let Some(text) = record.value_str() {
            output.value = Some(redact(text).into_bytes());
        }
        Ok(output)
    }
}

/// `text` with emails and card numbers masked.
pub fn redact(text: &str) -> String {
    mask_cards(&mask_emails(text))
}

fn is_email_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '%' | '+' | '-')
}

fn mask_emails(text: &str) -> String {
    let chars: Vec<char> = text.chars().collect();
    let mut out = String::with_capacity(text.len());
    let mut index = 0;
    while index < chars.len() {
        if chars[index] == '@' {
            let local_start = out
                .char_indices()
                .rev()
                .take_while(|(_, c)| is_email_char(*c))
                .last()
                .map(|(at, _)| at);
            let domain_end = chars[index + 1..]
                .iter()
                .take_while(|c| is_email_char(**c))
                .count();
            let domain: String = chars[index + 1..index + 1 + domain_end].iter().collect();
            if let Some(start) = local_start
                && domain.contains('.')
                && !domain.starts_with('.')
            {
                out.truncate(start);
                out.push_str("***");
            }
        }
        out.push(chars[index]);
        index += 1;
    }
    out
}

fn mask_cards(text: &str) -> String {
    let chars: Vec<char> = text.chars().collect();
    let mut out: Vec<char> = chars.clone();
    let mut start = 0;
    while start < chars.len() {
        if !chars[start].is_ascii_digit() || (start > 0 && chars[start - 1].is_ascii_digit()) {
            start += 1;
            continue;
        }
        // The longest run of digits with single spaces or dashes between them.
        let mut end = start;
        let mut digits = Vec::new();
        while end < chars.len() {
            if chars[end].is_ascii_digit() {
                digits.push(end);
                end += 1;
            } else if matches!(chars[end], ' ' | '-')
                && chars.get(end + 1).is_some_and(char::is_ascii_digit)
                && digits.len() < 19
            {
                end += 1;
            } else {
                break;
            }
        }
        if (13..=19).contains(&digits.len()) && luhn(digits.iter().map(|&at| chars[at])) {
            for &at in &digits[..digits.len() - 4] {
                out[at] = '*';
            }
        }
        start = end.max(start + 1);
    }
    out.into_iter().collect()
}

fn luhn(digits: impl DoubleEndedIterator<Item = char>) -> bool {
    let sum: u32 = digits
        .rev()
        .filter_map(|c| c.to_digit(10))
        .enumerate()
        .map(|(position, digit)| {
            if position.is_multiple_of(2) {
                return digit;
            }
            let doubled = digit * 2;
            if doubled > 9 { doubled - 9 } else { doubled }
        })
        .sum();
    sum.is_multiple_of(10)
}

fjord_sdk::export_processor!(fjord_sdk::shapes::Map<Redact>);

#[cfg(test)]
mod tests {
    use super::redact;

    #[test]
    fn emails_keep_their_domain() {
        assert_eq!(
            redact("mail jane.doe+x@example.com now"),
            "mail ***@example.com now"
        );
        assert_eq!(redact("a@b.c and c@d.e"), "***@b.c and ***@d.e");
        assert_eq!(
            redact("not @ an email, nor x@localhost"),
            "not @ an email, nor x@localhost"
        );
    }

    #[test]
    fn card_numbers_keep_their_last_four_digits() {
        assert_eq!(
            redact("card 4111 1111 1111 1111 ok"),
            "card **** **** **** 1111 ok"
        );
        assert_eq!(redact("4111-1111-1111-1111"), "****-****-****-1111");
        assert_eq!(redact("5500005555555559"), "************5559");
        assert_eq!(
            redact("order 4111111111111112"),
            "order 4111111111111112",
            "fails Luhn"
        );
        assert_eq!(redact("id 123456"), "id 123456", "too short");
    }

    #[test]
    fn values_that_are_not_text_pass() {
        use fjord_sdk::shapes::Map;
        use fjord_sdk::testing::TestRunner;
        let mut runner = TestRunner::<Map<super::Redact>>::new(&[]).expect("no settings");
        let record = runner.record(Some(b"k"), Some(&[0xff, 0xfe]), 0);
        let run = runner.process(vec![record]);
        assert_eq!(run.outputs[0].value.as_deref(), Some(&[0xff, 0xfe][..]));
    }
}
