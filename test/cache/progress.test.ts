import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ProgressReporter, formatProgressLine } from '../../src/cache/progress';

test('formatProgressLine pads like the original printf format', () => {
  assert.equal(formatProgressLine(12, 0, 3, 0), 'Info, total operations =      12  (+    12), total sessions =     3  (+  3)');
  assert.equal(formatProgressLine(1234567, 1234000, 10, 12), 'Info, total operations = 1234567  (+   567), total sessions =    10  (-  2)');
  assert.equal(formatProgressLine(5, 5, 7, 7), 'Info, total operations =       5  (+     0), total sessions =     7  (=  0)');
});

test('ProgressReporter stays quiet within a second and when the session count is unchanged', () => {
  const p = new ProgressReporter(0, 0);
  assert.equal(p.check(500, 10, () => 4), undefined, 'within the first second');
  assert.equal(p.check(1000, 0, () => 0), undefined, 'a second later but nothing stored');
  assert.equal(p.check(1000, 10, () => 4), 'Info, total operations =      10  (+    10), total sessions =     4  (+  4)');
  assert.equal(p.check(1500, 20, () => 5), undefined, 'half a second after the last line');
  assert.equal(p.check(2100, 30, () => 4), undefined, 'count back to what was printed');
  assert.equal(p.check(2200, 40, () => 2), 'Info, total operations =      40  (+    30), total sessions =     2  (-  2)');
});

test('ProgressReporter prints whenever the operation count crosses a multiple of -progress', () => {
  const p = new ProgressReporter(100, 0);
  let looked = 0;
  const count = (): number => (looked++, 1);
  assert.equal(p.check(10, 99, count), undefined);
  assert.equal(looked, 0, 'the session count is not computed when nothing can be printed');
  assert.equal(p.check(20, 100, count), 'Info, total operations =     100  (+   100), total sessions =     1  (+  1)');
  assert.equal(p.check(30, 150, count), undefined, 'same bucket, within a second');
  assert.equal(p.check(40, 250, () => 1), 'Info, total operations =     250  (+   150), total sessions =     1  (=  0)');
  assert.equal(p.check(5000, 260, () => 1), undefined, 'a long time later with nothing new to say');
});

test('ProgressReporter refuses an interval outside 0..1000000', () => {
  assert.throws(() => new ProgressReporter(1_000_001, 0), RangeError);
  assert.throws(() => new ProgressReporter(-1, 0), RangeError);
});
