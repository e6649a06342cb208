mod outcome;
mod rules;
