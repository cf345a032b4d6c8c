#include "libs/rusteval/syntax_metrics.h"

#include "gtest/gtest.h"

namespace temper::rusteval {
namespace {

constexpr char kProgram[] = R"rust(
/// Documented.
pub struct Point { x: i32 }

pub enum Shape { Circle, Square }

/** Block doc. */
pub trait Area { fn area(&self) -> f64; }

impl Point {
    /// A method.
    pub fn parse(s: &str) -> Result<Point, String> {
        let n: i32 = s.parse().map_err(|_| "bad".to_string())?;
        let v: Vec<i32> = vec![1, 2].iter().map(|x| x * 2).filter(|x| *x > 0).collect();
        if let Some(first) = v.first() { let _ = first; }
        match n { 0 => panic!("zero"), _ => {} }
        let o: Option<i32> = Some(1);
        let _ = o.unwrap() + v.len() as i32;
        unsafe { std::hint::unreachable_unchecked() };
        Ok(Point { x: n })
    }
}

fn helper() -> Option<u8> { todo!() }

#[cfg(test)]
mod tests {
    #[test]
    fn it_works() { super::helper().expect("x"); }
}
)rust";

TEST(SyntaxMetricsTest, CountsItemsAndIdioms) {
  SyntaxMetrics m = ComputeSyntaxMetrics(kProgram);
  EXPECT_TRUE(m.parsed_cleanly);
  EXPECT_EQ(m.functions, 3);  // parse, helper, it_works (trait method is a signature)
  EXPECT_EQ(m.structs, 1);
  EXPECT_EQ(m.enums, 1);
  EXPECT_EQ(m.impls, 1);
  EXPECT_EQ(m.traits, 1);
  EXPECT_EQ(m.tests, 1);
  EXPECT_EQ(m.public_items, 4);            // Point, Shape, Area, parse
  EXPECT_EQ(m.documented_public_items, 3);  // not Shape
  EXPECT_DOUBLE_EQ(m.doc_coverage(), 0.75);
  EXPECT_EQ(m.result_types, 1);
  EXPECT_EQ(m.option_types, 2);
  EXPECT_EQ(m.question_marks, 1);
  EXPECT_EQ(m.iterator_adaptors, 4);  // iter, map, filter, collect
  EXPECT_EQ(m.match_expressions, 1);
  EXPECT_EQ(m.if_lets, 1);
  EXPECT_EQ(m.unsafe_blocks, 1);
  EXPECT_EQ(m.unwraps, 2);  // unwrap, expect
  EXPECT_EQ(m.panics, 2);   // panic!, todo!
}

TEST(SyntaxMetricsTest, CommentsAndStringsDoNotFoolIt) {
  SyntaxMetrics m = ComputeSyntaxMetrics(R"rust(
// fn fake() { x.unwrap()?; match y {} unsafe {} panic!() }
/* struct Fake; enum Fake2 {} impl Fake {} trait T {} #[test] fn t() {} */
fn only() -> &'static str {
    let _raw = r#"fn a() { b.unwrap() } match unsafe if let Some(x) = y {}"#;
    "pub fn b() -> Result<Option<u8>, ()> { c.expect(\"\")? } todo!()"
}
)rust");
  EXPECT_TRUE(m.parsed_cleanly);
  EXPECT_EQ(m.functions, 1);
  SyntaxMetrics expected;
  expected.parsed_cleanly = true;
  expected.functions = 1;
  EXPECT_EQ(m, expected);
}

TEST(SyntaxMetricsTest, BrokenCodeIsReportedNotFatal) {
  SyntaxMetrics m = ComputeSyntaxMetrics("fn main( { let x = ; }");
  EXPECT_FALSE(m.parsed_cleanly);
  EXPECT_EQ(ComputeSyntaxMetrics("").functions, 0);
}

}  // namespace
}  // namespace temper::rusteval
