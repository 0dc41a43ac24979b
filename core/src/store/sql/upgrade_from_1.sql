-- Version 2: search. Phone and ID tails, and bigram full-text indexes of names and
-- places. The Rust step after this script fills them from the projection.

ALTER TABLE resident_details ADD COLUMN phone_tail TEXT;  -- last 4 digits of the phone
ALTER TABLE resident_details ADD COLUMN id_tail TEXT;     -- last 4 characters of the ID number
CREATE INDEX resident_details_phone_tail ON resident_details(phone_tail);
CREATE INDEX resident_details_id_tail ON resident_details(id_tail);

-- Tokens are the overlapping character pairs of a name ('陈秀英' → '陈秀 秀英'), made by
-- the core, so that a two-character fragment is one token and a longer one a phrase.
-- FTS5's trigram tokenizer cannot find two-character fragments, which is how Chinese
-- names are searched. The 'ascii' tokenizer only splits at ASCII spaces and punctuation
-- and takes every other character as it is, including rare name characters that
-- unicode61's Unicode 6.1 tables do not know.
CREATE VIRTUAL TABLE resident_name_search USING fts5(
    grams, content='', contentless_delete=1, tokenize='ascii'
);  -- rowid = residents.rowid
CREATE VIRTUAL TABLE building_place_search USING fts5(
    grams, content='', contentless_delete=1, tokenize='ascii'
);  -- rowid = buildings.rowid: address and name
CREATE VIRTUAL TABLE household_place_search USING fts5(
    grams, content='', contentless_delete=1, tokenize='ascii'
);  -- rowid = households.rowid: own address and room
