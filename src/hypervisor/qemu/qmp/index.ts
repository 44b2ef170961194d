// What code outside qmp/ takes from the client; typed commands are imported from './commands.js'.
export { QmpClient, type QmpEvent } from './client.js';
