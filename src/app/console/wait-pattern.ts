import type * as Re2js from 're2js';
import { DomainError, invalid } from '../../domain/errors.js';
import { errorMessage } from '../../util/errors.js';
import { loadOnFirstUse } from '../../util/load-on-first-use.js';

const re2js = loadOnFirstUse<typeof Re2js>('re2js');

export const MAX_PATTERN_LENGTH = 1024;

/** A compiled caller pattern: the first match in `text`, as a UTF-16 index into it and the matched text. */
export interface WaitPattern {
  readonly source: string;
  find(text: string): { index: number; text: string } | null;
  test(text: string): boolean;
}

/**
 * `"/regex/flags"` (flags from i, m, s, u) is a regular expression, anything else literal text. The one
 * place caller patterns are compiled. Regular expressions run on RE2 (re2js, pure JS): matching time is
 * linear in the text whatever the pattern, so no caller can freeze the daemon's event loop with a
 * backtracking bomb like /(a+)+$/. RE2 has no backreferences or lookaround; a pattern using them is
 * refused (UNSUPPORTED_PATTERN) rather than silently read as something else.
 */
export function compileWaitPattern(p: string, field = 'waitFor.console'): WaitPattern {
  if (p.length === 0) throw invalid('console pattern must not be empty', { field });
  if (p.length > MAX_PATTERN_LENGTH) throw invalid(`console pattern longer than ${MAX_PATTERN_LENGTH} characters`, { field });
  const m = /^\/(.+)\/([A-Za-z]*)$/s.exec(p);
  if (!m) return literal(p);
  if (!/^[imsu]*$/.test(m[2]!)) {
    throw invalid(`'${p}' reads as /regex/flags but '${m[2]}' are not flags (i, m, s, u); for literal text like this, escape the slashes in a regex: /${escapeForRegex(p)}/`, { field });
  }
  const source = m[1]!;
  // Checked first with the platform's own parser: syntax JavaScript rejects is invalid, not unsupported.
  try {
    new RegExp(source, m[2]!.includes('u') ? 'u' : '');
  } catch (e) {
    throw invalid(`invalid regular expression ${p}: ${errorMessage(e)}`, { field });
  }
  const { RE2JS, RE2JSException } = re2js();
  const flags: Record<string, number> = { i: RE2JS.CASE_INSENSITIVE, m: RE2JS.MULTILINE, s: RE2JS.DOTALL, u: 0 };
  let re: Re2js.RE2JS;
  try {
    re = RE2JS.compile(source, [...m[2]!].reduce((f, c) => f | flags[c]!, 0));
  } catch (e) {
    const why = e instanceof RE2JSException ? e.message : errorMessage(e);
    throw new DomainError('UNSUPPORTED_PATTERN', `regular expression ${p} uses syntax the linear-time matcher does not support (backreferences, lookahead and lookbehind are not available): ${why}`, { field });
  }
  return {
    source: p,
    find: (text) => {
      const matcher = re.matcher(text);
      return matcher.find() ? { index: matcher.start(), text: matcher.group() ?? '' } : null;
    },
    test: (text) => re.matcher(text).find(),
  };
}

function literal(p: string): WaitPattern {
  return {
    source: p,
    find: (text) => {
      const index = text.indexOf(p);
      return index < 0 ? null : { index, text: p };
    },
    test: (text) => text.includes(p),
  };
}

function escapeForRegex(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&');
}
