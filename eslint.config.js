// Type-checked linting for bugs only, no style (docs/decisions.md, "Linting", says which rules and why).
import js from '@eslint/js';
import tseslint from 'typescript-eslint';

export default tseslint.config(
  { ignores: ['dist/**', 'node_modules/**', '.cache/**'] },
  {
    files: ['**/*.ts'],
    extends: [js.configs.recommended, ...tseslint.configs.recommendedTypeChecked],
    languageOptions: { parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname } },
    rules: {
      // `void p` does not handle a rejection: a promise nobody awaits needs a .catch of its own.
      // node:test's test()/describe() promises are the runner's to await.
      '@typescript-eslint/no-floating-promises': ['error', {
        ignoreVoid: false,
        allowForKnownSafeCalls: [{ from: 'package', package: 'node:test', name: ['test', 'it', 'describe', 'suite'] }],
      }],
      // Passing on a caught value (unknown) or an AbortSignal's reason (any) is fine; rejecting with a literal is not.
      '@typescript-eslint/prefer-promise-reject-errors': ['error', { allowThrowingAny: true, allowThrowingUnknown: true }],
      // Fastify's types are extended by declaration merging: `interface X extends Y {}`.
      '@typescript-eslint/no-empty-object-type': ['error', { allowInterfaces: 'with-single-extends' }],
      // `const { a: _a, ...rest } = o` is how a field is left out of a copy.
      '@typescript-eslint/no-unused-vars': ['error', { ignoreRestSiblings: true }],
      // `async` on route plugins and interface implementations is deliberate: a throw becomes a rejection.
      '@typescript-eslint/require-await': 'off',
      // Style, not bugs: removing them would only touch lines other branches are editing.
      '@typescript-eslint/no-unnecessary-type-assertion': 'off',
      'prefer-const': 'off',
      'no-regex-spaces': 'off',
      // Control characters are matched on purpose (ANSI sequences, NUL and newline checks).
      'no-control-regex': 'off',
    },
  },
  {
    // Tests and benchmarks read JSON answers typed `any`; typing every body adds nothing the tests check.
    files: ['test/**/*.ts', 'bench/**/*.ts', 'src/**/*.test.ts'],
    rules: {
      '@typescript-eslint/no-explicit-any': 'off',
      '@typescript-eslint/no-unsafe-argument': 'off',
      '@typescript-eslint/no-unsafe-assignment': 'off',
      '@typescript-eslint/no-unsafe-call': 'off',
      '@typescript-eslint/no-unsafe-member-access': 'off',
      '@typescript-eslint/no-unsafe-return': 'off',
    },
  },

);
