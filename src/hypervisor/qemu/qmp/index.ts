export {
  QmpClient,
  DEFAULT_COMMAND_TIMEOUT_MS,
  DEFAULT_CONNECT_TIMEOUT_MS,
  type QmpClientEvents,
  type QmpConnectOptions,
  type QmpEvent,
  type QmpExecuteOptions,
  type QmpVersion,
  type QmpWaitForEventOptions,
} from './client.js';
export { QmpClosedError, QmpCommandError, QmpError, QmpJobError, QmpProtocolError, QmpTimeoutError } from './errors.js';
export { DEFAULT_MAX_MESSAGE_BYTES, LineSplitter, type QmpTimestamp } from './wire.js';
export * as qmpCommands from './commands.js';
export type * from './commands.js';
