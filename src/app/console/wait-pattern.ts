import { errorMessage } from '../../util/errors.js';
import { invalid } from '../../domain/errors.js';

export const MAX_PATTERN_LENGTH = 1024;

/**
 * `"/regex/flags"` (flags from i, m, s, u) is a regular expression, anything else literal text. Matching runs over a bounded
 * window of recent output so a pattern cannot be made to scan an unbounded log.
 */
export function compileWaitPattern(p: string): RegExp {
  if (p.length === 0) throw invalid('console pattern must not be empty', { field: 'waitFor.console' });
  if (p.length > MAX_PATTERN_LENGTH) throw invalid(`console pattern longer than ${MAX_PATTERN_LENGTH} characters`, { field: 'waitFor.console' });
  const m = /^\/(.+)\/([A-Za-z]*)$/s.exec(p);
  if (!m) return new RegExp(p.replace(/[.*+?^${}()|[\]\\]/g, '\\$&'));
  if (!/^[imsu]*$/.test(m[2]!)) {
    throw invalid(`'${p}' reads as /regex/flags but '${m[2]}' are not flags (i, m, s, u); for literal text like this, escape the slashes in a regex: /${escapeForRegex(p)}/`, { field: 'waitFor.console' });
  }
  try {
    return new RegExp(m[1]!, m[2]);
  } catch (e) {
    throw invalid(`invalid regular expression ${p}: ${errorMessage(e)}`, { field: 'waitFor.console' });
  }
}

function escapeForRegex(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&');
}
