// Authentication and authorization in Mosquitto's file formats.
export { createAuth, type Auth, type AuthOptions, type ReloadResult } from './create-auth.js';
export { runPasswdCommand, PasswdAborted, type PasswdIo } from './passwd-command.js';
export {
  addOrUpdateUser,
  checkCredentials,
  hashPassword,
  parsePasswordFile,
  readPasswordFile,
  verifyPassword,
  PasswordFileError,
  type PasswordEntry,
  type PasswordHash,
} from './password-file.js';
export { AclChecker, AclFileError, createAclAuthorizer, parseAcl, readAclFile, subscribeDecision, type AclRules, type AclRule, type AclAccess, type SubscriptionAccess } from './acl.js';
