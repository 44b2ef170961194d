// What code outside qga/ takes from the client; typed commands are imported from './commands.js'.
export { QgaClient, type QgaClientOptions } from './client.js';
export { QgaClosedError, QgaCommandError, QgaError, QgaTimeoutError, QgaUnavailableError } from './errors.js';
