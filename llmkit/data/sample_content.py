"""Hand-written sample records shaped like the MLPerf Inference LLM validation sets.

Plain, deterministic Python data (standard library only, no I/O at import time).
A separate module tokenizes these texts and builds DataFrames in the official
schemas; this module only supplies the text:

* ``ORCA``         -- OpenOrca-style rows (system prompt, question, reference answer).
* ``GSM8K``        -- grade-school math rows with few-shot style worked reasoning that
                      ends exactly with ``"The answer is <N>."``.
* ``MBXP``         -- code-completion rows in six languages (2 per language, ordered by
                      language: cpp, javascript, php, python, ruby, typescript).
* ``LONG_CONTEXT`` -- llama3.1-405b style rows: summarization (rouge), needle in a
                      haystack (niah_em) and document QA (qa_em).

All facts, names, places and passages are invented.

Every MBXP record was verified with the real runtimes (g++, node, php, python3, ruby,
tsc + node), running the program exactly as the MBXP/mxeval evaluation builds it:
each ``solution`` + ``test`` exits 0, and a deliberately wrong solution (returning a
constant or the input unchanged) makes the same ``test`` exit nonzero. The TypeScript tests
start with ``import * as assert from 'assert'`` as the official MBXP ones do, so that tsc,
without @types/node, reports the missing module and exits 2 while still emitting the
JavaScript: mxeval counts a TypeScript program as compiled only then.
"""
from dataclasses import dataclass


@dataclass(frozen=True)
class OrcaRecord:
    """Mixtral OpenOrca-style row."""
    system_prompt: str
    question: str
    reference: str  # a good reference answer, 1-4 sentences, used for ROUGE


@dataclass(frozen=True)
class Gsm8kRecord:
    question: str
    reasoning: str  # worked solution, ending exactly with "The answer is <N>."
    answer: str  # the number as a string, e.g. "18", "1,250", "-3", "2.5"


@dataclass(frozen=True)
class MbxpRecord:
    language: str  # cpp, python, php, javascript, ruby, typescript
    entry_point: str  # function name
    prompt: str  # signature + docstring/comment, as given by MBXP
    solution: str  # full correct function as a model would emit it (no fences)
    test: str  # MBXP-style test code; solution + test exits 0 iff correct


@dataclass(frozen=True)
class LongContextRecord:
    """llama3.1-405b style row."""
    metric: str  # "rouge" | "niah_em" | "qa_em"
    dataset: str  # source name
    prompt: str  # user message text (no chat template)
    reference: str  # rouge: summary; niah_em: uuid(s), comma-separated; qa_em: alternatives joined by "|"


# --------------------------------------------------------------------------- ORCA
_SYS_STEP = ("You are an AI assistant. User will give you a task. Your goal is to complete the task as "
             "faithfully as you can. While performing the task think step-by-step and justify your steps.")

ORCA: tuple[OrcaRecord, ...] = (  # (system_prompt, question, reference)
    OrcaRecord(_SYS_STEP,
        "Translate the following sentence into French: \"The library opens at nine o'clock every morning.\"",
        "La bibliothèque ouvre à neuf heures tous les matins."),
    OrcaRecord("You are a helpful assistant, who always provides explanations. Think like you are answering a five year old.",
        "Why do leaves change color in the autumn?",
        ("In autumn, trees stop making chlorophyll, the green stuff that helps leaves make food from sunlight. When the green fades away, the yellow and orange "
         "colors that were hiding in the leaves can be seen. Some trees also make new red colors when the nights get cool.")),
    OrcaRecord("You are an AI assistant that helps people find information.",
        ('Premise: "A man in a red jacket is riding a bicycle down a snowy street."\nHypothesis: "A person is riding a bike outside."\nIs the hypothesis entailed '
         "by the premise?\nOptions:\n- yes\n- it is not possible to tell\n- no"),
        "yes. A man riding a bicycle down a street is a person riding a bike outside, so the hypothesis is entailed by the premise."),
    OrcaRecord("",
        ("Write a one-sentence summary of the following text: The town council of Ferndale voted on Tuesday to convert an unused parking lot near the train "
         "station into a community garden. Volunteers will build raised beds this spring, and residents can apply for a plot through the council's website "
         "starting in March."),
        "Ferndale's town council voted to turn an unused parking lot near the train station into a community garden, with plots open to residents from March."),
    OrcaRecord("You are a helpful assistant that answers multiple choice questions. First output the correct answer, then briefly explain why.",
        "Which of the following is a renewable source of energy?\nOptions:\nA. coal\nB. natural gas\nC. wind\nD. petroleum",
        ("C. wind. Wind is renewable because it is constantly replenished by natural processes, while coal, natural gas and petroleum are fossil fuels that take "
         "millions of years to form.")),
    OrcaRecord("You are a helpful math tutor. Solve the problem step by step and state the final answer.",
        "Solve 4*x + 7 = 31 for x.",
        "Subtract 7 from both sides to get 4x = 24. Divide both sides by 4 to get x = 6."),
)

# --------------------------------------------------------------------------- GSM8K
GSM8K: tuple[Gsm8kRecord, ...] = (  # (question, reasoning, answer)
    Gsm8kRecord("Lena bakes 3 trays of muffins with 8 muffins on each tray. She gives 6 muffins to her neighbors. How many muffins does she have left?",
        "Lena bakes 3 * 8 = 24 muffins. After giving away 6, she has 24 - 6 = 18 muffins left. The answer is 18.",
        '18'),
    Gsm8kRecord("A print shop produces 250 flyers every hour. It runs for 4 hours on Monday and 1 hour on Tuesday. How many flyers does it produce in total?",
        ("On Monday the shop produces 250 * 4 = 1000 flyers. On Tuesday it produces 250 * 1 = 250 flyers. "
         "In total it produces 1000 + 250 = 1250 flyers. The answer is 1,250."),
        '1,250'),
    Gsm8kRecord(("At 6 p.m. the temperature in a mountain village was 4 degrees Celsius. By midnight it had dropped by 9 degrees, and by sunrise it had risen by 2 "
         "degrees. What was the temperature at sunrise, in degrees Celsius?"),
        "At midnight the temperature was 4 - 9 = -5 degrees. By sunrise it was -5 + 2 = -3 degrees. The answer is -3.",
        '-3'),
    Gsm8kRecord(("Omar has 12 liters of lemonade. He keeps 2 liters for himself and pours the rest equally into 4 pitchers. How many liters of lemonade are in each "
         "pitcher?"),
        "Omar pours 12 - 2 = 10 liters into the pitchers. Each pitcher gets 10 / 4 = 2.5 liters. The answer is 2.5.",
        '2.5'),
    Gsm8kRecord(("A school orders 14 boxes of pencils. Each box holds 12 pencils. If the pencils are shared equally among 6 classrooms, how many pencils does each "
         "classroom get?"),
        "The school has 14 * 12 = 168 pencils. Each classroom gets 168 / 6 = 28 pencils. The answer is 28.",
        '28'),
    Gsm8kRecord(("Priya earns $15 per hour. She works 6 hours on Saturday and 4 hours on Sunday, then spends $35 on a concert ticket. How much of her weekend earnings "
         "does she have left?"),
        "Priya works 6 + 4 = 10 hours, so she earns 10 * 15 = $150. After buying the ticket she has 150 - 35 = $115 left. The answer is 115.",
        '115'),
)

# --------------------------------------------------------------------------- MBXP
MBXP: tuple[MbxpRecord, ...] = (
    # ---- cpp
    MbxpRecord(language="cpp", entry_point="sumOfDigits",
        prompt="""\
#include <bits/stdc++.h>
using namespace std;

/**
 * Write a c++ function to find the sum of the digits of a non-negative integer.
 * > sumOfDigits(345)
 * 12
 * > sumOfDigits(12)
 * 3
 */
int sumOfDigits(int n) {
""",
        solution="""\
#include <bits/stdc++.h>
using namespace std;

int sumOfDigits(int n) {
    int total = 0;
    while (n > 0) {
        total += n % 10;
        n /= 10;
    }
    return total;
}
""",
        test="""
template <typename T> bool compare(T a, T b){ return a == b; }

int main(int argc, char* argv[]) {
    int x0 = sumOfDigits(345);
    if (!(compare(x0, 12))) { throw runtime_error("Exception -- test case 0 did not pass."); }
    int x1 = sumOfDigits(12);
    if (!(compare(x1, 3))) { throw runtime_error("Exception -- test case 1 did not pass."); }
    int x2 = sumOfDigits(97);
    if (!(compare(x2, 16))) { throw runtime_error("Exception -- test case 2 did not pass."); }
    return 0;
}
""",
    ),
    MbxpRecord(language="cpp", entry_point="squareEvens",
        prompt="""\
#include <bits/stdc++.h>
using namespace std;

/**
 * Write a function to return the squares of the even numbers in the given vector, keeping their order.
 * > squareEvens(vector<int>{1, 2, 3, 4})
 * {4, 16}
 * > squareEvens(vector<int>{5, 7})
 * {}
 */
vector<int> squareEvens(vector<int> nums) {
""",
        solution="""\
#include <bits/stdc++.h>
using namespace std;

vector<int> squareEvens(vector<int> nums) {
    vector<int> result;
    for (int x : nums) {
        if (x % 2 == 0) {
            result.push_back(x * x);
        }
    }
    return result;
}
""",
        test="""
template <typename T> bool compare(T a, T b){ return a == b; }

int main(int argc, char* argv[]) {
    vector<int> x0 = squareEvens(vector<int>{1, 2, 3, 4});
    if (!(compare(x0, {4, 16}))) { throw runtime_error("Exception -- test case 0 did not pass."); }
    vector<int> x1 = squareEvens(vector<int>{5, 7});
    if (!(compare(x1, {}))) { throw runtime_error("Exception -- test case 1 did not pass."); }
    vector<int> x2 = squareEvens(vector<int>{0, -2, 6, 9});
    if (!(compare(x2, {0, 4, 36}))) { throw runtime_error("Exception -- test case 2 did not pass."); }
    return 0;
}
""",
    ),
    # ---- javascript
    MbxpRecord(language="javascript", entry_point="isPalindrome",
        prompt="""\
/**
 * Write a function to check whether a string is a palindrome, ignoring case and any non-alphanumeric characters.
 * > isPalindrome("Racecar")
 * true
 * > isPalindrome("hello")
 * false
 */
function isPalindrome(text) {
""",
        solution="""\
function isPalindrome(text) {
    const cleaned = text.toLowerCase().replace(/[^a-z0-9]/g, "");
    return cleaned === cleaned.split("").reverse().join("");
}
""",
        test="""
const assert = require('assert');
assert.strictEqual(isPalindrome("Racecar"), true, 'Error at 1th assert statement.');
assert.strictEqual(isPalindrome("A man, a plan, a canal: Panama"), true, 'Error at 2th assert statement.');
assert.strictEqual(isPalindrome("hello"), false, 'Error at 3th assert statement.');
""",
    ),
    MbxpRecord(language="javascript", entry_point="runningSum",
        prompt="""\
/**
 * Write a function to compute the running (cumulative) sum of an array of numbers.
 * > runningSum([1, 2, 3, 4])
 * [1, 3, 6, 10]
 * > runningSum([5, -2, 7])
 * [5, 3, 10]
 */
function runningSum(nums) {
""",
        solution="""\
function runningSum(nums) {
    const result = [];
    let total = 0;
    for (const x of nums) {
        total += x;
        result.push(total);
    }
    return result;
}
""",
        test="""
function compare(x, y) { return JSON.stringify(x) === JSON.stringify(y); }
var x0 = runningSum([1, 2, 3, 4]);
if (!compare(x0, [1, 3, 6, 10])) { throw new Error('Error at 1th assert statement.'); }
var x1 = runningSum([5, -2, 7]);
if (!compare(x1, [5, 3, 10])) { throw new Error('Error at 2th assert statement.'); }
var x2 = runningSum([]);
if (!compare(x2, [])) { throw new Error('Error at 3th assert statement.'); }
""",
    ),
    # ---- php
    MbxpRecord(language="php", entry_point="reverseWords",
        prompt="""\
<?php
/**
 * Write a function to reverse the order of the words in a given string.
 * > reverseWords("hello world")
 * "world hello"
 * > reverseWords("one two three")
 * "three two one"
 */
function reverseWords($s){
""",
        solution="""\
<?php
function reverseWords($s){
    return implode(" ", array_reverse(explode(" ", $s)));
}
""",
        test="""
$x0 = reverseWords("hello world");
if (!compare($x0, "world hello")) { throw new Exception("Error at 1th assert statement."); }
$x1 = reverseWords("one two three");
if (!compare($x1, "three two one")) { throw new Exception("Error at 2th assert statement."); }
$x2 = reverseWords("single");
if (!compare($x2, "single")) { throw new Exception("Error at 3th assert statement."); }

function compare($x, $y) { return $x == $y; }
""",
    ),
    MbxpRecord(language="php", entry_point="secondLargest",
        prompt="""\
<?php
/**
 * Write a function to find the second largest distinct value in an array of integers.
 * > secondLargest([1, 5, 3, 5, 4])
 * 4
 * > secondLargest([10, 20])
 * 10
 */
function secondLargest($nums){
""",
        solution="""\
<?php
function secondLargest($nums){
    $unique = array_values(array_unique($nums));
    rsort($unique);
    return $unique[1];
}
""",
        test="""
$x0 = secondLargest([1, 5, 3, 5, 4]);
if (!compare($x0, 4)) { throw new Exception("Error at 1th assert statement."); }
$x1 = secondLargest([10, 20]);
if (!compare($x1, 10)) { throw new Exception("Error at 2th assert statement."); }
$x2 = secondLargest([-1, -7, -3]);
if (!compare($x2, -3)) { throw new Exception("Error at 3th assert statement."); }

function compare($x, $y) { return $x == $y; }
""",
    ),
    # ---- python
    MbxpRecord(language="python", entry_point="is_perfect_square",
        prompt='''\
def is_perfect_square(n):
    """
    Write a python function to check whether the given non-negative integer is a perfect square.
    >>> is_perfect_square(16)
    True
    >>> is_perfect_square(14)
    False
    """
''',
        solution="""\
def is_perfect_square(n):
    if n < 0:
        return False
    root = int(n ** 0.5)
    while root * root > n:
        root -= 1
    while (root + 1) * (root + 1) <= n:
        root += 1
    return root * root == n
""",
        test="""
def check(candidate):
    # Check some simple cases
    assert candidate(16) == True
    assert candidate(14) == False
    assert candidate(1) == True
    assert candidate(26) == False
    assert candidate(144) == True
""",
    ),
    MbxpRecord(language="python", entry_point="count_vowels",
        prompt='''\
def count_vowels(s):
    """
    Write a function to count the vowels (a, e, i, o, u, in either case) in a string.
    >>> count_vowels("Programming")
    3
    >>> count_vowels("rhythm")
    0
    """
''',
        solution="""\
def count_vowels(s):
    return sum(1 for ch in s.lower() if ch in "aeiou")
""",
        test="""
def check(candidate):
    # Check some simple cases
    assert candidate("Programming") == 3
    assert candidate("AEIOU xyz") == 5
    assert candidate("rhythm") == 0
""",
    ),
    # ---- ruby
    MbxpRecord(language="ruby", entry_point="factorial",
        prompt="""\
##
# Write a function to compute the factorial of a non-negative integer.
# > factorial(5)
# 120
# > factorial(0)
# 1
def factorial(n)
""",
        solution="""\
def factorial(n)
  (1..n).reduce(1, :*)
end
""",
        test="""
x0 = factorial(5)
raise 'Error at 1th assert statement.' if x0 != 120
x1 = factorial(0)
raise 'Error at 2th assert statement.' if x1 != 1
x2 = factorial(10)
raise 'Error at 3th assert statement.' if x2 != 3628800
""",
    ),
    MbxpRecord(language="ruby", entry_point="remove_duplicates",
        prompt="""\
##
# Write a function to remove duplicate elements from an array, keeping the first occurrence of each.
# > remove_duplicates([1, 2, 2, 3, 1])
# [1, 2, 3]
# > remove_duplicates([4, 4, 4])
# [4]
def remove_duplicates(arr)
""",
        solution="""\
def remove_duplicates(arr)
  seen = {}
  result = []
  arr.each do |x|
    next if seen[x]
    seen[x] = true
    result << x
  end
  result
end
""",
        test="""
x0 = remove_duplicates([1, 2, 2, 3, 1])
raise 'Error at 1th assert statement.' if x0 != [1, 2, 3]
x1 = remove_duplicates([4, 4, 4])
raise 'Error at 2th assert statement.' if x1 != [4]
x2 = remove_duplicates([])
raise 'Error at 3th assert statement.' if x2 != []
""",
    ),
    # ---- typescript
    MbxpRecord(language="typescript", entry_point="capitalizeWords",
        prompt="""\
/**
 * Write a function to capitalize the first letter of every space-separated word in a string.
 * > capitalizeWords("hello world")
 * "Hello World"
 * > capitalizeWords("typeScript is fun")
 * "TypeScript Is Fun"
 */
function capitalizeWords(text : string) : string {
""",
        solution="""\
function capitalizeWords(text : string) : string {
    return text
        .split(" ")
        .map((word: string) => (word.length > 0 ? word.charAt(0).toUpperCase() + word.slice(1) : word))
        .join(" ");
}
""",
        test="""

import * as assert from 'assert'

let actual_1 = capitalizeWords("hello world");
let expected_1 = "Hello World";
assert.deepEqual(actual_1, expected_1, "Exception --- test case 0 failed to pass");

let actual_2 = capitalizeWords("typeScript is fun");
let expected_2 = "TypeScript Is Fun";
assert.deepEqual(actual_2, expected_2, "Exception --- test case 1 failed to pass");

let actual_3 = capitalizeWords("");
let expected_3 = "";
assert.deepEqual(actual_3, expected_3, "Exception --- test case 2 failed to pass");
""",
    ),
    MbxpRecord(language="typescript", entry_point="sumOfSquares",
        prompt="""\
/**
 * Write a function to find the sum of the squares of the first n natural numbers.
 * > sumOfSquares(3)
 * 14
 * > sumOfSquares(5)
 * 55
 */
function sumOfSquares(n : number) : number {
""",
        solution="""\
function sumOfSquares(n : number) : number {
    let total = 0;
    for (let k = 1; k <= n; k++) {
        total += k * k;
    }
    return total;
}
""",
        test="""

import * as assert from 'assert'

let actual_1 = sumOfSquares(3);
let expected_1 = 14;
assert.deepEqual(actual_1, expected_1, "Exception --- test case 0 failed to pass");

let actual_2 = sumOfSquares(5);
let expected_2 = 55;
assert.deepEqual(actual_2, expected_2, "Exception --- test case 1 failed to pass");

let actual_3 = sumOfSquares(1);
let expected_3 = 1;
assert.deepEqual(actual_3, expected_3, "Exception --- test case 2 failed to pass");
""",
    ),
)

# --------------------------------------------------------------------------- LONG_CONTEXT
_SUM = "Summarize the following article in 128 tokens. Please output the summary only, without any other text.\n\nArticle:\n"
_NIAH = ("A special magic uuid is hidden within the following text. Make sure to memorize it. "
         "I will quiz you about the uuid afterwards.\n")
_QA = "Answer the question based on the given documents. Only give me the answer and do not output any other words."
_QA_END = ('\n\nAnswer the question based on the given documents. Give only the answer, after "Answer:", '
           "and do not output any other words.\n\nQuestion: ")

LONG_CONTEXT: tuple[LongContextRecord, ...] = (
    LongContextRecord("rouge", "cnn_dailymail_sample", _SUM + (
        "Bramwell Cove, a fishing town of about 4,000 residents, launched its first electric ferry on Saturday, replacing a diesel vessel that had "
        "carried passengers across Sella Sound for nearly thirty years. The new ferry, named Gull's Rest, carries up to 120 passengers and 20 "
        "bicycles and completes the twelve-minute crossing on battery power alone. It recharges at a dockside station during the ten-minute "
        "turnaround at each end of the route.\n\n"
        "Harbor officials said the vessel cost 6.8 million dollars, about two thirds of which came from a regional clean transport grant. They expect "
        "fuel and maintenance savings of roughly 300,000 dollars a year and estimate that the switch will cut the town's transport emissions by "
        "around a fifth.\n\n"
        "Early riders praised the quiet engine and the smooth ride. \"You can actually hear the seabirds now,\" said one commuter who crosses the sound "
        "every weekday. Some residents raised concerns about winter reliability, when storms in the sound can delay crossings for hours, so the "
        "harbor authority will keep the old diesel ferry on standby through the first winter.\n\n"
        "Officials from two neighboring towns attended the launch and said they are studying similar conversions for their own routes."),
        "Bramwell Cove launched its first electric ferry, Gull's Rest, replacing a diesel vessel on the twelve-minute crossing of Sella Sound. The "
        "6.8 million dollar ferry, mostly paid for by a regional grant, is expected to save about 300,000 dollars a year and "
        "cut the town's transport emissions by around a fifth. The old diesel ferry will stay on standby through the first winter."),
    LongContextRecord("rouge", "cnn_dailymail_sample", _SUM + (
        "The Oakridge County Library System says its decision to eliminate overdue fines last year has brought thousands of lapsed borrowers back to "
        "its eleven branches. In the twelve months since the policy took effect, the system recorded 3,400 reactivated library cards, and total "
        "checkouts rose by 14 percent compared with the previous year.\n\n"
        "Library director Anneke Solvay said the fines had brought in only about 40,000 dollars a year, less than the staff time spent collecting "
        "them. \"Fines were keeping away exactly the families we most want to reach,\" she said. Most items are still returned on time: the share of "
        "books returned more than a month late rose only slightly, from 4.1 to 4.5 percent.\n\n"
        "Patrons who lose or badly damage an item must still pay to replace it, and accounts with items more than 60 days overdue are blocked from "
        "new checkouts until the items come back.\n\n"
        "The county board will review the policy again next spring, but several board members have already said they support making "
        "it permanent."),
        "The Oakridge County Library System says eliminating overdue fines brought back thousands of lapsed borrowers, with 3,400 cards reactivated "
        "and checkouts up 14 percent. Late returns barely increased, and patrons still pay for lost or damaged "
        "items. The county board will review the policy next spring."),
    LongContextRecord("rouge", "cnn_dailymail_sample", _SUM + (
        "More than 600 volunteers took part in this year's spring bird count at the Lake Tessaly wetlands, the largest turnout since the survey began "
        "eighteen years ago. Working in small teams over two weekends, they recorded 142 species, including a pair of marsh harriers that had not "
        "been seen at the lake for more than a decade.\n\n"
        "Organizers at the Tessaly Wetland Trust said the count suggests that a restoration project completed three years ago is paying off. The "
        "project reflooded 90 hectares of former farmland and removed a drainage channel that had dried out much of the eastern marsh. Numbers of "
        "wading birds in that area have roughly doubled since the work was finished.\n\n"
        "Not all the news was good. Counts of swallows and other insect-eating birds fell for the third year in a row, which the trust believes may "
        "be linked to a decline in insects across the surrounding farmland. The trust plans to work with local farmers on planting wildflower margins "
        "along field edges.\n\n"
        "Results from the count will be shared with the national bird atlas and published on the trust's website next month."),
        "A record 600 volunteers recorded 142 bird species at the Lake Tessaly wetlands, including marsh harriers not seen there for over a decade. "
        "Organizers credit a wetland restoration project for a doubling of wading birds in the eastern marsh, though "
        "swallow numbers fell for a third year. The trust plans to work with farmers on wildflower margins."),
    LongContextRecord("niah_em", "ruler_niah_sample", _NIAH + (
        "Gardeners often say that good soil is built slowly, one season at a time. Compost made from kitchen scraps and fallen leaves adds organic "
        "matter that helps the ground hold both air and water. A thin layer of mulch keeps weeds down and protects the surface from the drying summer "
        "wind. Many growers rotate their crops each year so that pests which favor one family of plants cannot build up in the same bed. Beans and "
        "peas are often planted after hungry crops such as cabbage, because their roots host bacteria that return nitrogen to the soil. Watering "
        "early in the morning gives leaves time to dry before evening, which reduces the risk of mildew. The special magic uuid for pale-harbor is: "
        "3f9c2a71-8b4e-4d2a-9c17-5e6b0a4d8f23. Seeds saved from the healthiest plants tend to produce stronger seedlings the following spring, "
        "especially when they are stored somewhere cool, dark and dry. A simple notebook recording planting dates, varieties and harvest weights "
        "becomes more useful with every passing year. Raised beds warm up sooner after winter and drain well after heavy rain, although they may need "
        "more frequent watering in a heat wave. Companion planting, such as growing marigolds near tomatoes, is popular with home gardeners, even if "
        "the results vary from one garden to the next. Patience remains the most important tool of all, since a garden rarely looks the way its owner "
        "imagined in the very first year. Over time, the rhythm of sowing, tending and harvesting becomes a quiet routine that many people find "
        "deeply calming.\n"
        "What is the special magic uuid for pale-harbor mentioned in the provided text?"),
        "3f9c2a71-8b4e-4d2a-9c17-5e6b0a4d8f23"),
    LongContextRecord("niah_em", "ruler_niah_sample", _NIAH + (
        "Bakers who make bread at home soon learn that flour, water, salt and yeast can behave very differently from one day to the next. A warm "
        "kitchen speeds up fermentation, while a cool one slows it down and often gives the loaf a deeper flavor. Kneading develops the gluten "
        "network that traps gas and lets the dough rise, but some recipes skip kneading altogether and rely on a long, slow rest instead. Weighing "
        "ingredients with a scale is far more reliable than measuring them in cups, because flour settles and packs in unpredictable ways. A "
        "sourdough starter needs regular feeding, and many bakers keep theirs in the refrigerator between baking days. Shaping the dough with gentle "
        "tension on the surface helps the loaf hold its form in the oven. Scoring the top with a sharp blade lets steam escape in a controlled way "
        "and gives each baker a chance to leave a personal mark. The special magic uuid for quiet-lantern is: a7d41e09-2c6f-4b83-8e5a-1f09c3b7d642. A "
        "covered pot traps moisture during the first part of the bake, producing a thin, crackling crust. Once the bread comes out of the oven, it "
        "should cool on a rack for at least an hour, since the crumb is still setting inside. Stale bread need not be wasted, because it makes "
        "excellent croutons, bread pudding or crumbs for coating vegetables. With practice, the smell of a fresh loaf becomes one of the small "
        "rewards of a slow weekend morning.\n"
        "What is the special magic uuid for quiet-lantern mentioned in the provided text?"),
        "a7d41e09-2c6f-4b83-8e5a-1f09c3b7d642"),
    LongContextRecord("niah_em", "ruler_niah_sample", _NIAH + (
        "Walkers who explore the coast at low tide should always check a tide table before setting out. Tides rise and fall roughly twice a day, but "
        "the exact timing shifts by around fifty minutes from one day to the next. Sandbars that look firm in the morning sun can be cut off by the "
        "returning sea surprisingly quickly, leaving careless visitors stranded. Rock pools left behind by the falling water are home to crabs, "
        "anemones, small fish and snails that cling tightly to the stone. Turning over rocks to look underneath is fine, as long as each one is "
        "returned gently to the position in which it was found. Strong winds can push water higher up the beach than the tide table predicts, so it "
        "is wise to leave a generous margin of time. Good footwear with a firm grip matters on seaweed-covered ledges, which are often far more "
        "slippery than they appear. The special magic uuid for amber-falcon is: 5b2e8f14-d03a-4c97-a61e-7c48f2d9b0e5. Many coastal paths are "
        "maintained by volunteers who repair steps, clear fallen branches and replace worn signposts each winter. Birdwatchers often gather at river "
        "mouths, where feeding waders follow the edge of the retreating water. Carrying a small bag to collect litter is a simple habit that keeps "
        "the shoreline clean for everyone who comes afterwards. At the end of the day, few sights are as rewarding as the tide returning over the "
        "sand in the soft evening light.\n"
        "What is the special magic uuid for amber-falcon mentioned in the provided text?"),
        "5b2e8f14-d03a-4c97-a61e-7c48f2d9b0e5"),
    LongContextRecord("qa_em", "ruler_qa_sample", _QA + "\n\nThe following are given documents.\n\n" + (
        "Document 1:\nLake Tessaly\nLake Tessaly is a shallow freshwater lake surrounded by reed beds and wet meadows. It is fed by three small streams "
        "and drains north into the Arlen Firth. The lake is a popular stop for migrating waterfowl in spring.\n\n"
        "Document 2:\nTessaly Observatory\nThe Tessaly Observatory is a research telescope on the northern ridge above Lake Tessaly. It was built by "
        "the Halvorsen Foundation in 1962 and is now operated jointly by three regional universities. Its main instrument is a 1.8 meter reflecting "
        "telescope.\n\n"
        "Document 3:\nKestrel Ridge Trail\nThe Kestrel Ridge Trail is a 14 kilometer footpath that follows the ridge above the lake. "
        "It is maintained by the Orrin Trust and passes close to the observatory gates.") + _QA_END +
        "Which organization built the Tessaly Observatory?\nAnswer:",
        "Halvorsen Foundation|the Halvorsen Foundation"),
    LongContextRecord("qa_em", "ruler_qa_sample", _QA + "\n\nThe following are given documents.\n\n" + (
        "Document 1:\nDunmere Canal\nThe Dunmere Canal was completed in 1842 to carry coal and slate from the uplands to the port of Halsey. Traffic "
        "declined after the arrival of the railway, and the canal is now used mainly by pleasure boats.\n\n"
        "Document 2:\nCorran Valley Railway\nThe Corran Valley Railway is a former branch line that linked the market town of Corran with the coast. "
        "The line opened in 1887, carried passengers and freight for almost eighty years and closed in 1964. Part of the route is now a cycle path.\n\n"
        "Document 3:\nCorran\nCorran is a market town known for its Thursday livestock sales and its stone bridge over the river "
        "Wend. Its population grew quickly in the late nineteenth century.") + _QA_END +
        "In what year did the Corran Valley Railway open?\nAnswer:",
        "1887"),
    LongContextRecord("qa_em", "ruler_qa_sample", _QA + "\n\nThe following are given documents.\n\n" + (
        "Document 1:\nPellow Bridge\nPellow Bridge is a five-arch stone bridge across the river Senna, about twenty kilometers downstream from its "
        "source. It was widened in 1911 to carry motor traffic.\n\n"
        "Document 2:\nEllisford\nEllisford is a small town built on both banks of the Brannock River. It grew around a series of water mills and is now "
        "known for its annual rowing regatta held each June.\n\n"
        "Document 3:\nEllisford Wool Market\nThe Ellisford Wool Market is a covered hall built in 1790 for the sale of fleeces. "
        "Today it hosts a weekly craft fair and a winter food festival.") + _QA_END +
        "Which river flows through the town of Ellisford?\nAnswer:",
        "Brannock River|the Brannock River|Brannock"),
)
