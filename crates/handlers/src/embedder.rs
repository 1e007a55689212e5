//! [`Embedder`]: text → vector, behind a trait so the model is swappable; and the default,
//! [`HashingEmbedder`], which needs no model download.

use async_trait::async_trait;

/// Why an embedding failed.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct EmbedError(pub String);

/// Turns texts into vectors whose cosine similarity reflects how alike the texts are.
///
/// Implement it to plug in a real model (a local ONNX model, an HTTP embedding service):
/// the [`VectorIndexHandler`](crate::VectorIndexHandler) calls [`embed`](Self::embed) once
/// per batch of up to 100 texts, and similarity search calls it for the query. An `Err`
/// makes the handler retry the batch with its [`RetryPolicy`](crate::RetryPolicy).
#[async_trait]
pub trait Embedder: Send + Sync + std::fmt::Debug + 'static {
    /// The length of every vector this embedder returns.
    fn dimensions(&self) -> usize;

    /// One vector per text, in order, each of [`dimensions`](Self::dimensions) length.
    ///
    /// # Errors
    /// [`EmbedError`] when the texts cannot be embedded (a model or service failure).
    async fn embed(&self, texts: &[String]) -> Result<Vec<Vec<f32>>, EmbedError>;
}

/// Weight of a whole-word feature (unigram).
const UNIGRAM_WEIGHT: f32 = 1.0;
/// Weight of a word-bigram feature: order matters less than the words themselves.
const BIGRAM_WEIGHT: f32 = 0.5;
/// Weight of one character trigram: a word has several, each says less than the word. Half
/// a word's weight lets a misspelt word (most trigrams shared) outscore the hash-collision
/// noise of 256 dimensions; lower weights lose typos in that noise.
const TRIGRAM_WEIGHT: f32 = 0.5;

/// The default [`Embedder`]: signed feature hashing (the "hashing trick"), deterministic and
/// local, so the vector backend works with no model download and no network.
///
/// The text is lowercased and split into words (runs of letters and digits). Each word
/// unigram, each pair of adjacent words (bigram) and each character trigram of a word padded
/// with boundary markers (`^pay`, `pay`, `aym`, …, `nt$`) is hashed with 64-bit FNV-1a (a
/// stable hash, so vectors stored by one build match queries of the next) into one of
/// [`dimensions`](Embedder::dimensions) buckets, and one bit of the hash picks the sign, so
/// colliding features tend to cancel rather than pile up. Each word weighs twice as much
/// as a bigram or a single trigram. The vector is then L2-normalised, so cosine
/// similarity is a dot product; a text with no words embeds as the zero vector, which is
/// similar to nothing.
///
/// **What it captures:** lexical overlap (shared words and word pairs) and sub-word overlap,
/// so typos, inflections and shared identifier fragments (`checkout` / `chekout`,
/// `payment` / `payments`) still score well. **What it does not:** meaning. Synonyms
/// (`purchase` / `buy`), paraphrases and other languages score as unrelated as any two
/// texts without shared letters. With 256 dimensions unrelated texts also score slightly
/// above or below 0 through hash collisions; more dimensions make that noise smaller.
///
/// # Using a real model instead
/// Implement [`Embedder`] and put it in [`Pipeline::embedder`](crate::Pipeline::embedder):
/// ```
/// use conveyor_handlers::{EmbedError, Embedder};
///
/// #[derive(Debug)]
/// struct HttpEmbedder {
///     url: String,
/// }
///
/// #[async_trait::async_trait]
/// impl Embedder for HttpEmbedder {
///     fn dimensions(&self) -> usize {
///         384
///     }
///
///     async fn embed(&self, texts: &[String]) -> Result<Vec<Vec<f32>>, EmbedError> {
///         // POST `texts` to `self.url` and return one 384-long vector per text;
///         // a failure here makes the handler retry the batch.
///         Err(EmbedError(format!("{} is unreachable ({} texts)", self.url, texts.len())))
///     }
/// }
/// ```
/// Vectors of another length than the stored ones are never compared: changing the model
/// (or [`HashingEmbedder::new`]'s dimensions) needs the `search_embeddings` table
/// re-populated.
///
/// # Example
/// ```
/// use conveyor_handlers::{Embedder, HashingEmbedder};
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// let embedder = HashingEmbedder::new(128);
/// let v = embedder.embed(&["checkout failed".to_owned()]).await.unwrap();
/// assert_eq!(v[0].len(), 128);
/// # }
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HashingEmbedder {
    dimensions: usize,
}

impl Default for HashingEmbedder {
    /// 256 dimensions: 1 KiB per stored vector, little collision noise for short event texts.
    fn default() -> Self {
        Self::new(256)
    }
}

impl HashingEmbedder {
    /// An embedder of `dimensions`-long vectors.
    ///
    /// # Panics
    /// If `dimensions` is 0.
    pub fn new(dimensions: usize) -> Self {
        assert!(
            dimensions > 0,
            "HashingEmbedder needs at least one dimension"
        );
        Self { dimensions }
    }

    /// The normalised vector of one text (synchronous; [`Embedder::embed`] maps it over a batch).
    pub fn embed_one(&self, text: &str) -> Vec<f32> {
        let mut v = vec![0.0f32; self.dimensions];
        let lower = text.to_lowercase();
        let words: Vec<&str> = lower
            .split(|c: char| !c.is_alphanumeric())
            .filter(|w| !w.is_empty())
            .collect();
        for (i, word) in words.iter().enumerate() {
            self.add(&mut v, Feature::Word(word), UNIGRAM_WEIGHT);
            if let Some(next) = words.get(i + 1) {
                self.add(&mut v, Feature::Bigram(word, next), BIGRAM_WEIGHT);
            }
            let chars: Vec<char> = std::iter::once('^')
                .chain(word.chars())
                .chain(std::iter::once('$'))
                .collect();
            for gram in chars.windows(3) {
                self.add(&mut v, Feature::Trigram(gram), TRIGRAM_WEIGHT);
            }
        }
        normalize(&mut v);
        v
    }

    fn add(&self, v: &mut [f32], feature: Feature<'_>, weight: f32) {
        let h = feature.hash();
        // the top bit picks the sign, the rest the bucket
        let sign = if h >> 63 == 1 { -1.0 } else { 1.0 };
        let bucket = ((h & (u64::MAX >> 1)) % self.dimensions as u64) as usize;
        v[bucket] += sign * weight;
    }
}

#[async_trait]
impl Embedder for HashingEmbedder {
    fn dimensions(&self) -> usize {
        self.dimensions
    }

    async fn embed(&self, texts: &[String]) -> Result<Vec<Vec<f32>>, EmbedError> {
        Ok(texts.iter().map(|t| self.embed_one(t)).collect())
    }
}

/// One hashed feature. The kinds hash with distinct tags so the word `ab` and the trigram
/// `^ab` never share a hash by construction.
enum Feature<'a> {
    Word(&'a str),
    Bigram(&'a str, &'a str),
    Trigram(&'a [char]),
}

impl Feature<'_> {
    fn hash(&self) -> u64 {
        let mut h = Fnv1a::new();
        match self {
            Feature::Word(w) => {
                h.write(b"w\0");
                h.write(w.as_bytes());
            }
            Feature::Bigram(a, b) => {
                h.write(b"b\0");
                h.write(a.as_bytes());
                h.write(b"\0");
                h.write(b.as_bytes());
            }
            Feature::Trigram(chars) => {
                h.write(b"t\0");
                let mut buf = [0u8; 4];
                for c in chars.iter() {
                    h.write(c.encode_utf8(&mut buf).as_bytes());
                }
            }
        }
        h.finish()
    }
}

/// 64-bit FNV-1a with a final avalanche (splitmix64's finaliser), so the low and high bits
/// used for bucket and sign are both well mixed. Written out because its output must never
/// change between Rust releases (std's hashers promise no such thing).
struct Fnv1a(u64);

impl Fnv1a {
    const OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
    const PRIME: u64 = 0x0000_0100_0000_01b3;

    fn new() -> Self {
        Self(Self::OFFSET)
    }

    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 ^= u64::from(*b);
            self.0 = self.0.wrapping_mul(Self::PRIME);
        }
    }

    fn finish(&self) -> u64 {
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
}

/// Scale `v` to unit length in place; the zero vector stays zero.
pub(crate) fn normalize(v: &mut [f32]) {
    let norm = v.iter().map(|x| f64::from(*x).powi(2)).sum::<f64>().sqrt();
    if norm > 0.0 {
        for x in v.iter_mut() {
            *x = (f64::from(*x) / norm) as f32;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dot(a: &[f32], b: &[f32]) -> f32 {
        a.iter().zip(b).map(|(x, y)| x * y).sum()
    }

    fn norm(v: &[f32]) -> f32 {
        dot(v, v).sqrt()
    }

    #[test]
    fn embeddings_are_deterministic_and_stable() {
        let e = HashingEmbedder::default();
        let a = e.embed_one("checkout_completed web user-42 plan=pro");
        assert_eq!(a, e.embed_one("checkout_completed web user-42 plan=pro"));
        assert_eq!(
            a,
            HashingEmbedder::new(256).embed_one("Checkout_Completed WEB user-42 plan=pro")
        );
        // pins the hash: a changed hash function would orphan every stored vector
        assert_eq!(Fnv1a::new().0, 0xcbf2_9ce4_8422_2325);
        let mut h = Fnv1a::new();
        h.write(b"a");
        assert_eq!(h.0, 0xaf63_dc4c_8601_ec8c);
    }

    #[test]
    fn embeddings_have_unit_length() {
        let e = HashingEmbedder::default();
        for text in [
            "a",
            "page_view web u1 /pricing",
            "ünïcödé wörds ✓ 42",
            &"long ".repeat(500),
        ] {
            let n = norm(&e.embed_one(text));
            assert!((n - 1.0).abs() < 1e-4, "{text:?} has norm {n}");
        }
    }

    #[test]
    fn text_without_words_embeds_as_zero() {
        let e = HashingEmbedder::default();
        for text in ["", "   ", "!!! --- ///"] {
            assert!(e.embed_one(text).iter().all(|x| *x == 0.0), "{text:?}");
        }
    }

    #[test]
    fn similar_texts_score_higher_than_unrelated_ones() {
        let e = HashingEmbedder::default();
        let doc = e.embed_one("checkout_failed web user-17 card declined insufficient funds");
        let close = e.embed_one("card declined");
        let typo = e.embed_one("crad delcined insuficient");
        let unrelated = e.embed_one("page_view mobile newsletter signup");
        assert!(dot(&doc, &close) > dot(&doc, &unrelated) + 0.2);
        assert!(dot(&doc, &typo) > dot(&doc, &unrelated));
        assert!(dot(&doc, &doc) > dot(&doc, &close));
    }

    #[test]
    fn word_order_is_captured_by_bigrams() {
        let e = HashingEmbedder::default();
        let [a, same, swapped] =
            ["card declined", "card declined", "declined card"].map(|t| e.embed_one(t));
        assert!(dot(&a, &same) > dot(&a, &swapped));
        assert!(dot(&a, &swapped) > 0.5);
    }

    #[tokio::test]
    async fn dimensions_are_honoured() {
        for dims in [1, 7, 64, 256, 1024] {
            let e = HashingEmbedder::new(dims);
            assert_eq!(e.dimensions(), dims);
            let texts = vec!["one two".to_owned(), String::new(), "three".to_owned()];
            let vs = e.embed(&texts).await.unwrap();
            assert_eq!(vs.len(), 3);
            assert!(vs.iter().all(|v| v.len() == dims));
        }
    }

    #[test]
    #[should_panic(expected = "at least one dimension")]
    fn zero_dimensions_are_rejected() {
        let _ = HashingEmbedder::new(0);
    }

    #[test]
    fn normalize_leaves_zero_alone_and_scales_others() {
        let mut zero = vec![0.0; 3];
        normalize(&mut zero);
        assert_eq!(zero, vec![0.0; 3]);
        let mut v = vec![3.0, 4.0];
        normalize(&mut v);
        assert_eq!(v, vec![0.6, 0.8]);
    }
}
