"""The CRM's own domain (users, Leads and Contacts, the organisation): plain functions, no HTTP."""
